//! `--workers K`: the subscribers spread over K child processes of this
//! program, to get past one process's open-file limit (and use more than
//! one process's share of the scheduler).
//!
//! The parent keeps the publishing, the server measurements and the
//! report; each worker holds a slice of the subscribers. They speak JSON
//! lines: the parent writes the [`WorkerSpec`] and then [`Order`]s to a
//! worker's stdin; the worker writes [`WorkerReport`]s to its stdout —
//! `connected` once, `progress` every 50 ms, `done` with its result. A
//! worker whose stdin closes stops, so none outlives its parent.

use std::ops::Range;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc};

use crate::BenchError;
use crate::fleet::{ConnectSummary, FleetProgress, FleetResult, LocalFleet, ProgressGauge};
use crate::options::{BenchOptions, Plan};

/// How often a worker reports its progress (the publisher's flow control
/// reads it, so it should not be stale).
const PROGRESS_EVERY: Duration = Duration::from_millis(50);
/// How long the parent waits for the workers' results after `stop`.
const RESULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a worker is to do: the run's options and its subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub options: BenchOptions,
    pub run_id: String,
    pub slice: Range<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Order {
    Cut,
    React { on: bool },
    Chat { on: bool },
    ListUnread,
    MarkRead,
    Drain { targets: Vec<u64> },
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum WorkerReport {
    Connected(ConnectSummary),
    Progress(FleetProgress),
    Done(Box<FleetResult>),
}

/// The subscribers of worker `index` of `count` among `total`.
pub fn slice(index: usize, count: usize, total: usize) -> Range<usize> {
    index * total / count..(index + 1) * total / count
}

#[derive(Default)]
struct WorkerState {
    progress: FleetProgress,
    connected: Option<ConnectSummary>,
    result: Option<FleetResult>,
    /// Why its stdout ended or broke, if it did.
    gone: Option<String>,
}

pub(crate) struct WorkerFleet {
    children: Vec<Child>,
    orders: Vec<mpsc::Sender<Order>>,
    states: Arc<Mutex<Vec<WorkerState>>>,
    changed: Arc<Notify>,
}

impl WorkerFleet {
    pub(crate) fn spawn(plan: &Plan) -> Result<Self, BenchError> {
        let count = plan.options.workers;
        let program = plan.options.worker_program.clone().ok_or_else(|| BenchError::InvalidOption {
            option: "workers",
            reason: "this caller cannot start worker processes".into(),
        })?;
        let states = Arc::new(Mutex::new((0..count).map(|_| WorkerState::default()).collect::<Vec<_>>()));
        let changed = Arc::new(Notify::new());
        let mut children = Vec::with_capacity(count);
        let mut orders = Vec::with_capacity(count);
        for index in 0..count {
            let mut child = Command::new(&program.program)
                .args(&program.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| BenchError::WorkerSpawn { index, source })?;
            let spec = WorkerSpec {
                options: BenchOptions { progress: false, ..plan.options.clone() },
                run_id: plan.run_id.clone(),
                slice: slice(index, count, plan.options.connections),
            };
            let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
            let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
                return Err(BenchError::WorkerProtocol { index, reason: "no pipes".into() });
            };
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(write_orders(stdin, spec, rx));
            tokio::spawn(read_reports(index, stdout, states.clone(), changed.clone()));
            children.push(child);
            orders.push(tx);
        }
        Ok(Self { children, orders, states, changed })
    }

    fn send(&self, order: &Order) {
        for orders in &self.orders {
            let _ = orders.try_send(order.clone());
        }
    }

    /// Waits until `done(state)` holds for every worker, or one is gone.
    async fn wait_all(&self, done: impl Fn(&WorkerState) -> bool) -> Result<(), BenchError> {
        loop {
            let notified = self.changed.notified();
            {
                let states = self.states.lock();
                if states.iter().all(&done) {
                    return Ok(());
                }
                if let Some((index, state)) =
                    states.iter().enumerate().find(|(_, s)| !done(s) && s.gone.is_some())
                {
                    let status = state.gone.clone().unwrap_or_default();
                    return Err(BenchError::WorkerExited { index, status });
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    pub(crate) async fn connected(&self) -> Result<ConnectSummary, BenchError> {
        self.wait_all(|state| state.connected.is_some()).await?;
        let mut total = ConnectSummary::default();
        self.states.lock().iter().filter_map(|s| s.connected.as_ref()).for_each(|c| total.add(c));
        Ok(total)
    }

    pub(crate) fn progress(&self) -> FleetProgress {
        sum_progress(&self.states.lock())
    }

    pub(crate) fn gauge(&self) -> ProgressGauge {
        let states = self.states.clone();
        Arc::new(move || sum_progress(&states.lock()))
    }

    pub(crate) fn cut(&self) {
        self.send(&Order::Cut);
    }

    pub(crate) fn react(&self, on: bool) {
        self.send(&Order::React { on });
    }

    pub(crate) fn chat(&self, on: bool) {
        self.send(&Order::Chat { on });
    }

    pub(crate) fn list_unread(&self) {
        self.send(&Order::ListUnread);
    }

    pub(crate) fn mark_read(&self) {
        self.send(&Order::MarkRead);
    }

    pub(crate) fn drain(&self, targets: &[u64]) {
        self.send(&Order::Drain { targets: targets.to_vec() });
    }

    pub(crate) async fn stop(mut self) -> Result<FleetResult, BenchError> {
        self.send(&Order::Stop);
        let waited =
            tokio::time::timeout(RESULT_TIMEOUT, self.wait_all(|state| state.result.is_some())).await;
        let outcome = match waited {
            Ok(Ok(())) => {
                let mut total = FleetResult::default();
                for state in self.states.lock().iter_mut() {
                    total.add(state.result.take().unwrap_or_default());
                }
                Ok(total)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => {
                let index = self.states.lock().iter().position(|s| s.result.is_none()).unwrap_or(0);
                Err(BenchError::WorkerExited { index, status: "no result within 30 s of stop".into() })
            }
        };
        drop(std::mem::take(&mut self.orders));
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
        outcome
    }
}

fn sum_progress(states: &[WorkerState]) -> FleetProgress {
    let mut total = FleetProgress::default();
    states.iter().for_each(|state| total.add(&state.progress));
    total
}

async fn write_orders(
    mut stdin: tokio::process::ChildStdin,
    spec: WorkerSpec,
    mut orders: mpsc::Receiver<Order>,
) {
    let mut line = serde_json::to_string(&spec).expect("specs serialize");
    line.push('\n');
    if stdin.write_all(line.as_bytes()).await.is_err() {
        return;
    }
    while let Some(order) = orders.recv().await {
        let mut line = serde_json::to_string(&order).expect("orders serialize");
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_reports(
    index: usize,
    stdout: tokio::process::ChildStdout,
    states: Arc<Mutex<Vec<WorkerState>>>,
    changed: Arc<Notify>,
) {
    let mut lines = BufReader::new(stdout).lines();
    let gone = loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<WorkerReport>(&line) {
                Ok(report) => {
                    let mut states = states.lock();
                    let state = &mut states[index];
                    match report {
                        WorkerReport::Connected(summary) => state.connected = Some(summary),
                        WorkerReport::Progress(progress) => state.progress = progress,
                        WorkerReport::Done(result) => state.result = Some(*result),
                    }
                }
                Err(_) => break format!("unreadable report: {}", line.chars().take(200).collect::<String>()),
            },
            Ok(None) => break "its output ended".to_string(),
            Err(error) => break format!("reading its output: {error}"),
        }
        changed.notify_waiters();
    };
    states.lock()[index].gone = Some(gone);
    changed.notify_waiters();
}

/// The worker side: reads its spec and orders on stdin, reports on stdout.
pub async fn run_worker() -> Result<(), BenchError> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin.next_line().await.map_err(BenchError::WorkerSpec)?;
    let line = line.ok_or_else(|| BenchError::WorkerSpec(std::io::ErrorKind::UnexpectedEof.into()))?;
    let spec: WorkerSpec = serde_json::from_str(&line).map_err(BenchError::WorkerSpecInvalid)?;
    let mut plan = spec.options.plan().await?;
    plan.run_id = spec.run_id;
    let fleet = LocalFleet::start(Arc::new(plan), spec.slice);
    let gauge = fleet.gauge();
    let progress = tokio::spawn(async move {
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            report(&WorkerReport::Progress(gauge()));
        }
    });
    report(&WorkerReport::Connected(fleet.connected().await));
    loop {
        let order = match stdin.next_line().await {
            Ok(Some(line)) => serde_json::from_str::<Order>(&line).unwrap_or(Order::Stop),
            _ => Order::Stop,
        };
        match order {
            Order::Cut => fleet.cut(),
            Order::React { on } => fleet.react(on),
            Order::Chat { on } => fleet.chat(on),
            Order::ListUnread => fleet.list_unread(),
            Order::MarkRead => fleet.mark_read(),
            Order::Drain { targets } => fleet.drain(&targets),
            Order::Stop => break,
        }
    }
    progress.abort();
    let result = fleet.stop().await;
    report(&WorkerReport::Done(Box::new(result)));
    Ok(())
}

fn report(report: &WorkerReport) {
    println!("{}", serde_json::to_string(report).expect("reports serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_subscriber_once() {
        let slices: Vec<_> = (0..3).map(|i| slice(i, 3, 10)).collect();
        assert_eq!(slices, [0..3, 3..6, 6..10]);
        assert_eq!(slice(0, 1, 7), 0..7);
    }

    #[test]
    fn orders_and_reports_are_json_lines() {
        let order = serde_json::to_string(&Order::Drain { targets: vec![3, 4] }).unwrap();
        assert_eq!(order, r#"{"order":"drain","targets":[3,4]}"#);
        let report = WorkerReport::Progress(FleetProgress { delivered: 5, ..FleetProgress::default() });
        let line = serde_json::to_string(&report).unwrap();
        assert!(line.starts_with(r#"{"report":"progress","#), "{line}");
        assert!(
            matches!(serde_json::from_str(&line).unwrap(), WorkerReport::Progress(p) if p.delivered == 5)
        );
    }
}
