//! The three examples of `docs/capacity.md`, against the arithmetic done
//! by hand there, and input that cannot describe a workload.

use std::time::Duration;

use fanfare_capacity::{
    CapacityError, CapacityPlan, Limit, NodeFigures, NodeInputs, NodeSpec, PlanInputs, ShapeName, Workload,
    plan,
};

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

fn plan_of(inputs: &PlanInputs) -> CapacityPlan {
    let workload = Workload::from_inputs(inputs).unwrap();
    let node = NodeSpec::from_inputs(&NodeInputs::default()).unwrap();
    plan(&workload, &node, &NodeFigures::default())
}

#[track_caller]
fn close(actual: f64, expected: f64) {
    let tolerance = expected.abs() * 1e-4 + 1e-9;
    assert!((actual - expected).abs() <= tolerance, "{actual} is not {expected}");
}

#[test]
fn a_live_event_with_a_million_viewers() {
    let plan = plan_of(&PlanInputs {
        peak_connections: Some(1_000_000.0),
        publications_per_second: Some(20.0),
        shape: ShapeName::Live,
        ..PlanInputs::default()
    });
    let region = &plan.region;
    close(region.deliveries_per_second, 20_000_000.0);
    // 20,000,000 / (156,740 × 0.8) + 20 / 21,686 cores.
    close(region.cpu_cores, 159.5025);
    // CPU: 159.5 / (4 × 0.7) = 56.97 → 57; connections: 1,000,000 / 35,000 → 29.
    assert_eq!((region.nodes, region.limited_by, plan.total_nodes), (57, Limit::Cpu, 57));
    assert_eq!(region.nodes_at_saturation, 29);
    close(region.per_node.connections, 1_000_000.0 / 57.0);
    close(region.per_node.cpu_cores, 159.5025 / 57.0);
    // 64 MiB + 17,543.9 × (1.7 + 10) KiB.
    close(region.per_node.memory_bytes, 64.0 * MIB + 1_000_000.0 / 57.0 * 11.7 * KIB);
    // 20,000,000 × (200 + 120 + 52) B.
    close(region.egress_bytes_per_second, 7_440_000_000.0);
    // By age 20 / 3 × 86,400 = 576,000; by count one room × 1,000.
    close(region.history.publications_kept, 1000.0);
    close(region.history.bytes, 300_000.0);
    let redis = region.redis.as_ref().expect("57 nodes are a cluster");
    close(redis.live_frames_per_second, 20.0 * 57.0);
}

#[test]
fn a_workspace_of_a_hundred_thousand_members() {
    let plan = plan_of(&PlanInputs {
        daily_users: Some(100_000.0),
        messages_per_user_per_day: Some(40.0),
        online_share: Some(0.3),
        connections_per_user: Some(1.5),
        peak_to_average: Some(2.5),
        shape: ShapeName::Rooms,
        room_size: Some(100.0),
        history_ttl: Some(Duration::from_secs(30 * 86_400)),
        history_size: Some(10_000.0),
        ..PlanInputs::default()
    });
    let region = &plan.region;
    // 100,000 × 0.3 × 1.5 × 2.5 connections; 100,000 × 40 / 86,400 × 2.5 publications/s.
    close(region.connections, 112_500.0);
    close(region.publications_per_second, 115.7407);
    close(region.deliveries_per_second, 11_574.07);
    // 112,500 / 35,000 = 3.2 → 4 nodes, a cluster: 11,574 / 125,392 + 115.74 / 21,686.
    assert_eq!((region.nodes, region.limited_by), (4, Limit::Connections));
    close(region.cpu_cores, 0.097640);
    close(region.per_node.connections, 28_125.0);
    close(region.per_node.memory_bytes, 64.0 * MIB + 28_125.0 * 11.7 * KIB);
    close(region.egress_bytes_per_second, 4_305_555.6);
    // 1,125 rooms × 10,000 kept (by age it would be 120,000,000).
    assert_eq!(region.channels, Some(1125.0));
    close(region.history.publications_kept, 11_250_000.0);
    close(region.history.bytes, 3_375_000_000.0);
    let redis = region.redis.as_ref().unwrap();
    close(redis.memory_bytes, 5_062_500_000.0);
    close(redis.live_frames_per_second, 115.7407 * 4.0);
}

#[test]
fn a_messenger_with_ten_million_daily_users_in_two_regions() {
    let plan = plan_of(&PlanInputs {
        daily_users: Some(10_000_000.0),
        messages_per_user_per_day: Some(50.0),
        shape: ShapeName::Direct,
        history_ttl: Some(Duration::from_secs(6 * 3600)),
        regions: Some(2.0),
        ..PlanInputs::default()
    });
    let region = &plan.region;
    // 10,000,000 × 0.1 × 3 = 3,000,000 connections, half per region;
    // 10,000,000 × 50 / 86,400 × 3 = 17,361 publications/s, half per region.
    close(region.connections, 1_500_000.0);
    close(region.publications_per_second, 8_680.556);
    close(region.deliveries_per_second, 17_361.11);
    // 1,500,000 / 35,000 = 42.9 → 43 per region.
    assert_eq!((region.nodes, region.limited_by, plan.total_nodes), (43, Limit::Connections, 86));
    close(region.cpu_cores, 17_361.11 / 125_392.0 + 8_680.556 / 21_686.0);
    close(region.per_node.memory_bytes, 64.0 * MIB + 1_500_000.0 / 43.0 * 11.7 * KIB);
    // By age: 8,680.6 / 3 × 21,600 s.
    close(region.history.publications_kept, 62_500_000.0);
    close(region.history.bytes, 18_750_000_000.0);
    let redis = region.redis.as_ref().unwrap();
    close(redis.instance_share, 0.086806);
    close(redis.live_frames_per_second, 17_361.11);
}

#[test]
fn one_node_is_enough_for_a_small_site_and_needs_no_redis() {
    let workload = Workload::from_inputs(&PlanInputs {
        peak_connections: Some(2000.0),
        publications_per_second: Some(10.0),
        shape: ShapeName::Rooms,
        room_size: Some(20.0),
        ..PlanInputs::default()
    })
    .unwrap();
    let node = NodeSpec::from_inputs(&NodeInputs { min_nodes: Some(1.0), ..NodeInputs::default() }).unwrap();
    let plan = plan(&workload, &node, &NodeFigures::default());
    assert_eq!(plan.region.nodes, 1);
    assert!(plan.region.redis.is_none());
    // A single node: no cluster share. 200 / 156,740 + 10 / 21,686.
    close(plan.region.cpu_cores, 200.0 / 156_740.0 + 10.0 / 21_686.0);
    assert!(plan.to_string().contains("no Redis"), "{plan}");
}

#[test]
fn the_text_names_the_answer_and_every_figure_with_its_source() {
    let plan = plan_of(&PlanInputs {
        peak_connections: Some(1_000_000.0),
        publications_per_second: Some(20.0),
        ..PlanInputs::default()
    });
    let text = plan.to_string();
    assert!(text.starts_with("Nodes: 57, 4 cores each, limited by CPU\n"), "{text}");
    for expected in
        ["connections       17,544", "2.80 cores of 4", "59.52 Gbit/s", "156,740 (docs/benchmarks.md"]
    {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
}

fn refused(inputs: PlanInputs) -> String {
    Workload::from_inputs(&inputs).unwrap_err().to_string()
}

fn peak(connections: f64, rate: f64) -> PlanInputs {
    PlanInputs {
        peak_connections: Some(connections),
        publications_per_second: Some(rate),
        ..PlanInputs::default()
    }
}

#[test]
fn negative_zero_and_absurd_numbers_are_refused_by_name() {
    assert_eq!(refused(peak(-5.0, 10.0)), "--peak-connections: must be more than 0, not -5");
    assert_eq!(refused(peak(0.0, 10.0)), "--peak-connections: must be more than 0, not 0");
    assert_eq!(
        refused(peak(1e12, 10.0)),
        "--peak-connections: must be from 1 to 10000000000, not 1000000000000"
    );
    assert_eq!(refused(peak(10.5, 10.0)), "--peak-connections: must be a whole number, not 10.5");
    assert_eq!(refused(peak(1000.0, f64::NAN)), "--publications-per-second: must be a number, not NaN");
    assert!(
        refused(PlanInputs { message_bytes: Some(0.0), ..peak(10.0, 1.0) })
            .starts_with("--message-bytes: must be more than 0")
    );
    assert!(
        refused(PlanInputs { regions: Some(1000.0), ..peak(10.0, 1.0) })
            .starts_with("--regions: must be from 1 to 100")
    );
    assert!(
        refused(PlanInputs { peak_to_average: Some(0.5), ..peak(10.0, 1.0) })
            .starts_with("--peak-to-average: must be from 1")
    );
    let users = PlanInputs {
        daily_users: Some(1000.0),
        messages_per_user_per_day: Some(5.0),
        online_share: Some(0.5),
        ..PlanInputs::default()
    };
    assert!(refused(users).contains("more users online at the peak than use it in a day"));
}

#[test]
fn traffic_is_given_one_way_and_whole() {
    assert!(refused(PlanInputs::default()).starts_with("no traffic given"));
    let both = PlanInputs { daily_users: Some(10.0), ..peak(10.0, 1.0) };
    assert!(refused(both).starts_with("give the traffic one way"));
    let half = PlanInputs { daily_users: Some(10.0), ..PlanInputs::default() };
    assert_eq!(refused(half), "--messages-per-user-per-day: is required with this way of giving the traffic");
}

#[test]
fn shape_flags_must_fit_the_shape() {
    let rooms =
        |room_size| PlanInputs { shape: ShapeName::Rooms, room_size: Some(room_size), ..peak(1000.0, 1.0) };
    assert!(refused(rooms(5000.0)).contains("a room cannot hold more than the 1000 connections"));
    assert!(refused(rooms(1.0)).starts_with("--room-size: must be from 2"));
    let direct = PlanInputs { shape: ShapeName::Direct, room_size: Some(10.0), ..peak(1000.0, 1.0) };
    assert!(refused(direct).starts_with("--room-size: does not apply to --shape direct"));
    let live = PlanInputs { shape: ShapeName::Live, room_size: Some(10.0), ..peak(1000.0, 1.0) };
    assert!(refused(live).starts_with("--room-size: does not apply to --shape live"));
}

#[test]
fn node_flags_are_checked_too() {
    let refused = |inputs: NodeInputs| NodeSpec::from_inputs(&inputs).unwrap_err().to_string();
    assert!(
        refused(NodeInputs { headroom_percent: Some(95.0), ..NodeInputs::default() })
            .starts_with("--headroom-percent: must be from 0 to 90")
    );
    assert!(
        refused(NodeInputs { cores: Some(0.0), ..NodeInputs::default() })
            .starts_with("--cores-per-node: must be more than 0")
    );
    assert!(matches!(
        NodeSpec::from_inputs(&NodeInputs { min_nodes: Some(-1.0), ..NodeInputs::default() }),
        Err(CapacityError::Invalid { flag: "min-nodes", .. })
    ));
}
