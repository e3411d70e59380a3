//! What the server generates on first start and keeps in the data
//! directory (`data_dir`): the HTTP API key and the default Pusher app,
//! and, on a single node, the moderation state (`moderation/`).
//! State, not configuration: the settings only say where the directory is.
//! (The embedded store and the webhook dead letters live there too, each
//! owned by its own module.)

mod api_key;
mod moderation_file;
mod pusher_app;

pub use api_key::{api_key_file, load_or_create_api_key};
pub use moderation_file::ModerationFile;
pub use pusher_app::{load_or_create_default_app, pusher_app_file};
