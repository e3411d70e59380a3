//! `fanfare plan`: the fleet a workload needs — nodes per region with
//! headroom, memory and CPU per node, network egress, history storage and
//! Redis — from per-node figures measured by `fanfare bench --json`, or
//! those of `docs/benchmarks.md`. `docs/capacity.md` explains every
//! formula and works three examples.
//!
//! - `workload.rs`: the user's numbers, checked, as a [`Workload`].
//! - `figures.rs`: what one node does ([`NodeFigures`]).
//! - `fleet.rs`: the arithmetic ([`plan`]) and what it assumes.
//! - `report.rs`: the plan as text.

mod error;
mod figures;
mod fleet;
mod report;
mod workload;

pub use error::CapacityError;
pub use figures::{Figure, NodeFigures};
pub use fleet::{
    CapacityPlan, HistoryPlan, Limit, NodeInputs, NodeLoad, NodeSpec, RedisPlan, RegionPlan, WorkloadSummary,
    assumed, plan,
};
pub use workload::{PlanInputs, Shape, ShapeName, Workload};
