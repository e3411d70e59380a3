//! `fanfare bench`: the command line of the `fanfare-bench` library —
//! flags in, [`BenchOptions`] out, the report printed as a table or JSON.
//! Everything else (scenarios, drivers, measurements) is in the library.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fanfare_bench::{BenchOptions, Durability, Protocol, PublishFrom, PusherApp, Scenario, WorkerProgram};

use crate::config::parse_duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// N subscribed connections held: server memory per connection.
    Idle,
    /// N subscribers on one channel: deliveries/s, latency, integrity.
    Fanout,
    /// Many small channels (default connections / 3).
    Rooms,
    /// Fanout with every connection cut at once; clients resume.
    ReconnectStorm,
    /// History store appends and range reads.
    History,
    /// One huge room: viewers, comments, reactions, a priority lane.
    Live,
    /// A messenger: users on their feeds, two-member direct channels,
    /// notices, unread counts, read cursors.
    Dm,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Native,
    Pusher,
    /// NATS over WebSocket (a nats-server `websocket` port): fan-out reference
    Nats,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PublishFromArg {
    Api,
    Clients,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Fsync,
    Buffered,
}

/// Load a server and measure it: fanout throughput and latency, memory per
/// connection, reconnect storms, history store throughput, a live room.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(value_enum, required_unless_present = "worker")]
    scenario: Option<ScenarioArg>,
    #[arg(long, value_enum, default_value = "native")]
    protocol: ProtocolArg,
    /// The server, http://HOST:PORT, or https://HOST:PORT with TLS (only
    /// 127.0.0.0/8 unless --allow-remote)
    #[arg(long, default_value = "http://127.0.0.1:6001")]
    url: String,
    /// The native HTTP API key (publishing)
    #[arg(long, env = "FANFARE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A JWT for the native `connect` (anonymous without)
    #[arg(long)]
    token: Option<String>,
    /// Sign an HS256 JWT for each connection with this secret (its own
    /// `sub` each, no grants) instead of --token
    #[arg(long)]
    jwt_secret: Option<String>,
    /// Pusher app id (HTTP API path)
    #[arg(long, env = "FANFARE_PUSHER_APP_ID")]
    app_id: Option<String>,
    /// Pusher app key (WebSocket path, API signatures)
    #[arg(long, env = "FANFARE_PUSHER_APP_KEY")]
    app_key: Option<String>,
    /// Pusher app secret (API signatures)
    #[arg(long, env = "FANFARE_PUSHER_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    /// Subscriber connections
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Channels [default: 1; rooms: connections / 3; history: 100; dm: the
    /// direct channels, connections × 10, so each user is in 20]
    #[arg(long)]
    channels: Option<usize>,
    /// Put before every channel name, e.g. a namespace "bench:"
    #[arg(long, default_value = "")]
    channel_prefix: String,
    /// Publications per second in total; 0 = as fast as subscribers keep up
    /// [default: 0; reconnect-storm: 100; dm: 2000, from the users]
    #[arg(long)]
    rate: Option<f64>,
    /// live: comments per second in total, from --publishers connections
    /// (the ordinary lane) [default: 500]
    #[arg(long, conflicts_with = "rate")]
    comment_rate: Option<f64>,
    /// live: reactions per second in total, `react` commands spread over the viewers
    #[arg(long, default_value_t = 2000.0)]
    reaction_rate: f64,
    /// live: one publication through the HTTP API (the priority lane) this often
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    priority_interval: Duration,
    /// live: the room's channel (its namespace decides shaping)
    #[arg(long, default_value = "live:stage")]
    channel: String,
    /// Bytes of each publication's data
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// How long to publish (to hold connections, for idle)
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Stop publishing after this many publications
    #[arg(long)]
    messages: Option<u64>,
    /// Publish requests (and history reads) in flight at once
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// With --rate 0: hold publishing while subscribers are on average
    /// more than this many publications behind
    #[arg(long, default_value_t = 200)]
    max_lag: u64,
    #[arg(long, value_enum, default_value = "api")]
    publish_from: PublishFromArg,
    /// Publishing connections with --publish-from clients
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// The server's pid, to read its memory and CPU from /proc; repeat it
    /// (or give several, comma-separated) to sum a cluster's nodes and its Redis
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// More nodes of the server's cluster, http://HOST:PORT,…: subscribers
    /// are spread over --url and these, and each reconnect moves to the next
    #[arg(long, value_delimiter = ',')]
    cluster: Vec<String>,
    /// Spread the connections over this many child processes
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Bind client sockets to these loopback addresses in turn
    #[arg(long, value_delimiter = ',')]
    source_addrs: Vec<IpAddr>,
    /// Allow a server outside 127.0.0.0/8
    #[arg(long)]
    allow_remote: bool,
    /// With an https:// URL: trust only the PEM certificates in this file
    /// (e.g. a self-signed one) instead of Mozilla's roots
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Connections being opened at once (keep it under the server's listen
    /// backlog, or dropped SYNs cost 1 s retransmits)
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// After publishing: how long subscribers get to receive everything
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    drain_timeout: Duration,
    /// Hard limit for the whole run [default: 2 × duration + 2m]
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// reconnect-storm: cut every connection this long after publishing began
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    cut_after: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    backoff_initial: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    backoff_max: Duration,
    /// history: benchmark an embedded store in a new directory under DIR,
    /// in this process, instead of a server
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// history with --data-dir
    #[arg(long, value_enum, default_value = "fsync")]
    durability: DurabilityArg,
    /// history: publications per range read
    #[arg(long, default_value_t = 100)]
    read_limit: usize,
    /// Pusher event name of the publications
    #[arg(long, default_value = "fanfare-bench")]
    event: String,
    /// Pusher: publish in POST /apps/{id}/batch_events requests of N events
    /// (1-10) instead of one /events trigger per event; at --rate R a
    /// batch goes every N / R seconds, and each event's latency counts from
    /// when its batch was sent
    #[arg(long, value_name = "N")]
    pusher_batch: Option<usize>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// No progress line on stderr
    #[arg(long)]
    no_progress: bool,
    /// Run as a worker of another `fanfare bench` (orders on stdin)
    #[arg(long, hide = true)]
    worker: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    if args.worker {
        return runtime.block_on(fanfare_bench::run_worker()).context("bench worker");
    }
    let json = args.json;
    let options = options(args)?;
    let report = runtime.block_on(fanfare_bench::run(&options))?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    if let Some(live) = report.live.as_ref().filter(|live| !live.consistent()) {
        // Without shaping a room beyond the machine loses and disconnects:
        // a figure, so the report is printed above; the exit code says so.
        anyhow::bail!(
            "live room inconsistent: {} priority publications lost, comments {} (unreported {})",
            live.priority.lost,
            if live.ordinary.adds_up { "add up" } else { "do not add up" },
            live.ordinary.unreported
        );
    }
    if let Some(dm) = report.dm.as_ref().filter(|dm| !dm.intact()) {
        let m = &dm.messages;
        anyhow::bail!(
            "messenger notices not intact: {} of {} acknowledged messages noticed; {} lost, {} duplicated, {} out of order, {} channel gaps, {} channel repeats",
            m.notices_received,
            m.acked,
            m.lost,
            m.duplicated,
            m.out_of_order,
            m.channel_gaps,
            m.channel_repeats
        );
    }
    if let Some(d) = report.delivery.as_ref().filter(|_| !report.integrity_ok()) {
        anyhow::bail!(
            "delivery integrity violated: {} lost, {} duplicated, {} out of order",
            d.lost,
            d.duplicated,
            d.out_of_order
        );
    }
    Ok(())
}

fn options(args: BenchArgs) -> anyhow::Result<BenchOptions> {
    let scenario = match args.scenario.context("a scenario is required")? {
        ScenarioArg::Idle => Scenario::Idle,
        ScenarioArg::Fanout => Scenario::Fanout,
        ScenarioArg::Rooms => Scenario::Rooms,
        ScenarioArg::ReconnectStorm => Scenario::ReconnectStorm,
        ScenarioArg::History => Scenario::History,
        ScenarioArg::Live => Scenario::Live,
        ScenarioArg::Dm => Scenario::Dm,
    };
    let mut options = BenchOptions::new(scenario, args.url);
    options.protocol = match args.protocol {
        ProtocolArg::Native => Protocol::Native,
        ProtocolArg::Pusher => Protocol::Pusher,
        ProtocolArg::Nats => Protocol::Nats,
    };
    // An empty variable (`FANFARE_PUSHER_APP_ID=`) counts as unset.
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    options.pusher_app = match (given(args.app_id), given(args.app_key), given(args.app_secret)) {
        (Some(id), Some(key), Some(secret)) => Some(PusherApp { id, key, secret }),
        (None, None, None) => None,
        _ if options.protocol == Protocol::Native => None,
        _ => anyhow::bail!("--app-id, --app-key and --app-secret go together"),
    };
    options.api_key = given(args.api_key);
    options.token = args.token;
    options.jwt_secret = given(args.jwt_secret);
    options.connections = args.connections;
    options.channels = args.channels;
    options.channel_prefix = args.channel_prefix;
    options.rate = args.comment_rate.or(args.rate).unwrap_or(options.rate);
    options.live.reaction_rate = args.reaction_rate;
    options.live.priority_interval = args.priority_interval;
    options.live.channel = args.channel;
    options.size = args.size;
    options.duration = args.duration;
    options.messages = args.messages;
    options.in_flight = args.in_flight;
    options.max_lag = args.max_lag;
    options.publish_from = match args.publish_from {
        PublishFromArg::Api => PublishFrom::Api,
        PublishFromArg::Clients => PublishFrom::Clients,
    };
    options.publishers = args.publishers;
    options.server_pid = args.server_pid.first().copied();
    options.other_pids = args.server_pid.iter().skip(1).copied().collect();
    options.cluster = args.cluster;
    options.workers = args.workers;
    options.source_addrs = args.source_addrs;
    options.allow_remote = args.allow_remote;
    options.ca_file = args.ca_file;
    options.connect_concurrency = args.connect_concurrency;
    options.connect_timeout = args.connect_timeout;
    options.drain_timeout = args.drain_timeout;
    options.timeout = args.timeout;
    options.cut_after = args.cut_after;
    options.backoff_initial = args.backoff_initial;
    options.backoff_max = args.backoff_max;
    options.data_dir = args.data_dir;
    options.durability = match args.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::Buffered => Durability::Buffered,
    };
    options.read_limit = args.read_limit;
    options.event = args.event;
    options.pusher_batch = args.pusher_batch;
    options.progress = !args.no_progress;
    options.worker_program = Some(WorkerProgram {
        program: std::env::current_exe().context("finding this program for --workers")?,
        args: vec!["bench".into(), "--worker".into()],
    });
    Ok(options)
}
