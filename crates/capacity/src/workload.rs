//! What the fleet must carry, checked: the traffic at its peak, how it
//! fans out, how much history it keeps, and over how many regions.

use std::time::Duration;

use crate::CapacityError;

/// The numbers a user gives `fanfare plan`, as given: every field is one
/// flag, unchecked. [`Workload::from_inputs`] checks them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanInputs {
    pub daily_users: Option<f64>,
    pub messages_per_user_per_day: Option<f64>,
    pub online_share: Option<f64>,
    pub connections_per_user: Option<f64>,
    pub peak_connections: Option<f64>,
    pub publications_per_second: Option<f64>,
    pub peak_to_average: Option<f64>,
    pub shape: ShapeName,
    pub rooms: Option<f64>,
    pub room_size: Option<f64>,
    pub message_bytes: Option<f64>,
    pub history_ttl: Option<Duration>,
    pub history_size: Option<f64>,
    pub regions: Option<f64>,
}

/// `--shape`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShapeName {
    /// One channel (or a few) holding every viewer.
    #[default]
    Live,
    /// Many rooms of a few to a few thousand members.
    Rooms,
    /// Two-person conversations.
    Direct,
}

/// The fleet's load at its busiest moment, all regions together.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub peak_connections: f64,
    pub peak_publications_per_second: f64,
    /// Peak over the day's average, for the history kept.
    pub peak_to_average: f64,
    pub shape: Shape,
    /// The `data` of a publication, in bytes of JSON.
    pub message_bytes: f64,
    pub history_ttl: Duration,
    /// Publications kept per channel (`history_size`).
    pub history_size: f64,
    pub regions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Every viewer in one of `rooms` equal channels: a publication goes to
    /// everyone in its room, in every region.
    Live { rooms: f64 },
    /// Rooms of `members_online` subscribers each: a publication goes to
    /// them, in its own region.
    Rooms { members_online: f64 },
    /// Conversations of two: a publication goes to the recipient and to the
    /// sender's own connection.
    Direct,
}

/// A daily user who is online is this many connections by default.
const CONNECTIONS_PER_USER: f64 = 1.0;
/// Of a day's users, this share is online at an average moment by default.
const ONLINE_SHARE: f64 = 0.1;
const PEAK_TO_AVERAGE: f64 = 3.0;
const MESSAGE_BYTES: f64 = 200.0;
const HISTORY_SIZE: f64 = 1000.0;
const HISTORY_TTL: Duration = Duration::from_secs(24 * 3600);
const ROOM_SIZE: f64 = 50.0;

const MAX_USERS: f64 = 1e10;
const MAX_RATE: f64 = 1e9;

impl Workload {
    pub fn from_inputs(inputs: &PlanInputs) -> Result<Self, CapacityError> {
        let peak_to_average = range("peak-to-average", inputs.peak_to_average, PEAK_TO_AVERAGE, 1.0, 1000.0)?;
        let (peak_connections, peak_publications_per_second) = traffic(inputs, peak_to_average)?;
        let regions = whole("regions", inputs.regions, 1.0, 1.0, 100.0)?;
        let shape = shape(inputs, peak_connections / regions)?;
        Ok(Self {
            peak_connections,
            peak_publications_per_second,
            peak_to_average,
            shape,
            message_bytes: whole("message-bytes", inputs.message_bytes, MESSAGE_BYTES, 1.0, 1_048_576.0)?,
            history_ttl: history_ttl(inputs.history_ttl)?,
            history_size: whole("history-size", inputs.history_size, HISTORY_SIZE, 0.0, 1e9)?,
            regions: regions as u32,
        })
    }
}

fn traffic(inputs: &PlanInputs, peak_to_average: f64) -> Result<(f64, f64), CapacityError> {
    let by_users = inputs.daily_users.is_some()
        || inputs.messages_per_user_per_day.is_some()
        || inputs.online_share.is_some()
        || inputs.connections_per_user.is_some();
    let at_peak = inputs.peak_connections.is_some() || inputs.publications_per_second.is_some();
    match (by_users, at_peak) {
        (true, true) => Err(CapacityError::Traffic(
            "give the traffic one way: --daily-users and --messages-per-user-per-day, or --peak-connections and --publications-per-second, not both",
        )),
        (false, false) => Err(CapacityError::Traffic(
            "no traffic given: pass --daily-users and --messages-per-user-per-day, or --peak-connections and --publications-per-second",
        )),
        (true, false) => {
            let users = required("daily-users", inputs.daily_users, 1.0, MAX_USERS)?;
            let messages =
                required("messages-per-user-per-day", inputs.messages_per_user_per_day, 0.001, 1e6)?;
            let online = range("online-share", inputs.online_share, ONLINE_SHARE, 1e-6, 1.0)?;
            let per_user = range(
                "connections-per-user",
                inputs.connections_per_user,
                CONNECTIONS_PER_USER,
                0.01,
                100.0,
            )?;
            if online * peak_to_average > 1.0 {
                return Err(CapacityError::Invalid {
                    flag: "online-share",
                    reason: format!(
                        "{online} online on average times a peak of {peak_to_average}x the average puts more users online at the peak than use it in a day"
                    ),
                });
            }
            // The busiest moment is `peak_to_average` times the average one,
            // for connections and publications alike.
            let connections = (users * online * per_user * peak_to_average).ceil();
            let rate = users * messages / 86_400.0 * peak_to_average;
            Ok((connections, rate))
        }
        (false, true) => {
            let connections = required("peak-connections", inputs.peak_connections, 1.0, MAX_USERS)?;
            let rate = required("publications-per-second", inputs.publications_per_second, 0.001, MAX_RATE)?;
            Ok((whole_number("peak-connections", connections)?, rate))
        }
    }
}

fn shape(inputs: &PlanInputs, connections_per_region: f64) -> Result<Shape, CapacityError> {
    let not_here = |flag: &'static str, shape: &str| CapacityError::Invalid {
        flag,
        reason: format!("does not apply to --shape {shape}"),
    };
    match inputs.shape {
        ShapeName::Live => {
            if inputs.room_size.is_some() {
                return Err(not_here("room-size", "live"));
            }
            let rooms = whole("rooms", inputs.rooms, 1.0, 1.0, connections_per_region)?;
            Ok(Shape::Live { rooms })
        }
        ShapeName::Rooms => {
            if inputs.rooms.is_some() {
                return Err(not_here("rooms", "rooms (give --room-size)"));
            }
            let cap = connections_per_region.max(2.0);
            let members_online = whole("room-size", inputs.room_size, ROOM_SIZE.min(cap), 2.0, cap)
                .map_err(|error| room_larger_than_region(error, connections_per_region))?;
            Ok(Shape::Rooms { members_online })
        }
        ShapeName::Direct => {
            if inputs.rooms.is_some() {
                return Err(not_here("rooms", "direct"));
            }
            if inputs.room_size.is_some() {
                return Err(not_here("room-size", "direct (a conversation has two members)"));
            }
            Ok(Shape::Direct)
        }
    }
}

fn room_larger_than_region(error: CapacityError, connections: f64) -> CapacityError {
    match error {
        CapacityError::Invalid { flag, reason } => CapacityError::Invalid {
            flag,
            reason: format!(
                "{reason} (a room cannot hold more than the {connections} connections of a region at the peak)"
            ),
        },
        other => other,
    }
}

fn history_ttl(given: Option<Duration>) -> Result<Duration, CapacityError> {
    let ttl = given.unwrap_or(HISTORY_TTL);
    if ttl > Duration::from_secs(10 * 365 * 24 * 3600) {
        return Err(CapacityError::Invalid { flag: "history-ttl", reason: "at most ten years".into() });
    }
    Ok(ttl)
}

/// A value that must be given, within `[min, max]`.
fn required(flag: &'static str, value: Option<f64>, min: f64, max: f64) -> Result<f64, CapacityError> {
    match value {
        Some(value) => within(flag, value, min, max),
        None => Err(CapacityError::Invalid {
            flag,
            reason: "is required with this way of giving the traffic".into(),
        }),
    }
}

/// A value within `[min, max]`, or `default` when not given.
pub(crate) fn range(
    flag: &'static str,
    value: Option<f64>,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, CapacityError> {
    within(flag, value.unwrap_or(default), min, max)
}

/// A whole number within `[min, max]`, or `default` when not given.
pub(crate) fn whole(
    flag: &'static str,
    value: Option<f64>,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, CapacityError> {
    whole_number(flag, range(flag, value, default, min, max)?)
}

fn whole_number(flag: &'static str, value: f64) -> Result<f64, CapacityError> {
    if value.fract() != 0.0 {
        return Err(CapacityError::Invalid { flag, reason: format!("must be a whole number, not {value}") });
    }
    Ok(value)
}

fn within(flag: &'static str, value: f64, min: f64, max: f64) -> Result<f64, CapacityError> {
    if !value.is_finite() {
        return Err(CapacityError::Invalid { flag, reason: format!("must be a number, not {value}") });
    }
    if value < min || value > max {
        let reason = if value <= 0.0 && min > 0.0 {
            format!("must be more than 0, not {value}")
        } else {
            format!("must be from {min} to {max}, not {value}")
        };
        return Err(CapacityError::Invalid { flag, reason });
    }
    Ok(value)
}
