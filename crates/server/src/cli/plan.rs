//! `fanfare plan`: the flags of the capacity planner (`fanfare-capacity`,
//! `docs/capacity.md`), and its answer as text or JSON.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use fanfare_capacity::{NodeFigures, NodeInputs, NodeSpec, PlanInputs, ShapeName, Workload};

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct PlanArgs {
    /// Users active on a day (with --messages-per-user-per-day).
    #[arg(long, value_name = "N", help_heading = "Traffic from users")]
    daily_users: Option<f64>,
    /// Messages each of them publishes per day.
    #[arg(long, value_name = "N", help_heading = "Traffic from users")]
    messages_per_user_per_day: Option<f64>,
    /// Share of the day's users online at an average moment [default: 0.1].
    #[arg(long, value_name = "0..1", help_heading = "Traffic from users")]
    online_share: Option<f64>,
    /// Connections an online user holds (devices, tabs) [default: 1].
    #[arg(long, value_name = "N", help_heading = "Traffic from users")]
    connections_per_user: Option<f64>,
    /// Connections at the busiest moment (with --publications-per-second).
    #[arg(long, value_name = "N", help_heading = "Traffic at the peak")]
    peak_connections: Option<f64>,
    /// Publications per second at the busiest moment, all channels.
    #[arg(long, value_name = "N", help_heading = "Traffic at the peak")]
    publications_per_second: Option<f64>,
    /// The busiest moment over the day's average [default: 3].
    #[arg(long, value_name = "RATIO")]
    peak_to_average: Option<f64>,
    /// How publications fan out.
    #[arg(long, value_enum, default_value_t = ShapeArg::Live)]
    shape: ShapeArg,
    /// --shape live: viewers split over this many equal rooms [default: 1].
    #[arg(long, value_name = "N")]
    rooms: Option<f64>,
    /// --shape rooms: subscribers online in a room [default: 50].
    #[arg(long, value_name = "N")]
    room_size: Option<f64>,
    /// Size of a publication's data, bytes of JSON [default: 200].
    #[arg(long, value_name = "BYTES")]
    message_bytes: Option<f64>,
    /// History kept per channel, by age, like history_ttl [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    history_ttl: Option<Duration>,
    /// History kept per channel, by count, like history_size [default: 1000].
    #[arg(long, value_name = "N")]
    history_size: Option<f64>,
    /// Regions, each with its own nodes [default: 1].
    #[arg(long, value_name = "N")]
    regions: Option<f64>,
    /// Cores per node [default: 4].
    #[arg(long, value_name = "N", help_heading = "Nodes")]
    cores_per_node: Option<f64>,
    /// Connections one node may hold, limits.max_connections [default: 50000].
    #[arg(long, value_name = "N", help_heading = "Nodes")]
    max_connections_per_node: Option<f64>,
    /// Share of CPU and connections left free at the peak [default: 30].
    #[arg(long, value_name = "PERCENT", help_heading = "Nodes")]
    headroom_percent: Option<f64>,
    /// Fewest nodes per region [default: 2].
    #[arg(long, value_name = "N", help_heading = "Nodes")]
    min_nodes: Option<f64>,
    /// A `fanfare bench --json` report whose figures replace the built-in
    /// ones (idle: memory; fanout/rooms: deliveries per CPU-second; history
    /// over HTTP: publications per CPU-second). Repeatable.
    #[arg(long = "bench", value_name = "FILE", help_heading = "Nodes")]
    bench_files: Vec<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShapeArg {
    /// One huge room (or a few): every viewer gets every publication.
    Live,
    /// Many rooms of --room-size subscribers (team chat).
    Rooms,
    /// Conversations of two (a messenger).
    Direct,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    fanfare_config::parse_duration(text)
}

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let workload = Workload::from_inputs(&args.plan_inputs())?;
    let node = NodeSpec::from_inputs(&args.node_inputs())?;
    let figures = NodeFigures::measured(&args.bench_files)?;
    let plan = fanfare_capacity::plan(&workload, &node, &figures);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{plan}");
    }
    Ok(())
}

impl PlanArgs {
    fn plan_inputs(&self) -> PlanInputs {
        PlanInputs {
            daily_users: self.daily_users,
            messages_per_user_per_day: self.messages_per_user_per_day,
            online_share: self.online_share,
            connections_per_user: self.connections_per_user,
            peak_connections: self.peak_connections,
            publications_per_second: self.publications_per_second,
            peak_to_average: self.peak_to_average,
            shape: match self.shape {
                ShapeArg::Live => ShapeName::Live,
                ShapeArg::Rooms => ShapeName::Rooms,
                ShapeArg::Direct => ShapeName::Direct,
            },
            rooms: self.rooms,
            room_size: self.room_size,
            message_bytes: self.message_bytes,
            history_ttl: self.history_ttl,
            history_size: self.history_size,
            regions: self.regions,
        }
    }

    fn node_inputs(&self) -> NodeInputs {
        NodeInputs {
            cores: self.cores_per_node,
            max_connections: self.max_connections_per_node,
            headroom_percent: self.headroom_percent,
            min_nodes: self.min_nodes,
        }
    }
}
