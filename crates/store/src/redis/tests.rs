use super::instance::instance_from_info;
use super::scripts::{ItemOutcome, parse_append_reply};

#[test]
fn the_instance_is_read_from_info_and_durable_only_with_aof_always() {
    let server = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\ntcp_port:6379\r\n";
    let replication = "# Replication\r\nrole:master\r\nmaster_replid:r1\r\nmaster_replid2:0000\r\n";
    let persistence = "# Persistence\r\naof_enabled:1\r\n";
    let instance = instance_from_info(server, replication, persistence, true);
    assert_eq!(
        (
            instance.run_id.as_str(),
            instance.role.as_str(),
            instance.replid.as_str(),
            instance.replid2.as_str()
        ),
        ("abc123", "master", "r1", "0000")
    );
    assert!(instance.durable);
    assert!(!instance_from_info(server, replication, persistence, false).durable, "everysec or unknown");
    assert!(!instance_from_info(server, replication, "aof_enabled:0\r\n", true).durable);
}

#[test]
fn an_append_reply_has_one_outcome_per_item() {
    let reply =
        ["ep", "7", "100", "0", "3", "90", "1", "8", "110", "X2,5", "0", "0", "N"].map(String::from).to_vec();
    let (epoch, items) = parse_append_reply(reply, 4).unwrap();
    assert_eq!(epoch.as_str(), "ep");
    assert_eq!((items[0].offset, items[0].time_ms, &items[0].outcome), (7, 100, &ItemOutcome::Fresh));
    assert_eq!((items[1].offset, &items[1].outcome), (3, &ItemOutcome::Duplicate));
    assert_eq!((items[2].offset, &items[2].outcome), (8, &ItemOutcome::Deleted(vec![2, 5])));
    assert_eq!(items[3].outcome, ItemOutcome::NothingToDelete);
    assert!(parse_append_reply(vec!["ep".into(), "1".into()], 1).is_err());
    let bad = ["ep", "8", "110", "X2,x"].map(String::from).to_vec();
    assert!(parse_append_reply(bad, 1).is_err(), "a delete record lists numbers");
}
