//! Content rules on what clients publish: once per publication, on the
//! publish path, before the hub (never once per subscriber).
//!
//! Called by the native session's `publish` and by Pusher client events;
//! the HTTP APIs hold the server's credentials and skip these rules (they
//! keep the size limit, `policy::check_data`). For a publication in a
//! namespace with rules ([`ContentCheck::check`]):
//!
//! 1. The local rules (`rules.rs`) read every string value of `data`: links
//!    (`links.rs`) rejected or stripped, then blocklist matches rejected or
//!    masked; the JSON stays valid (`json_text.rs`).
//! 2. With a hook (`hook.rs`), the result is posted to it and the caller
//!    waits for its answer: `allow` publishes it, `reject` refuses it,
//!    `rewrite` publishes the hook's `data` instead (within the size limit).
//!    A failed call publishes the data as step 1 left it with
//!    `failure = "open"`, and refuses it with `"closed"`.
//! 3. A refusal is a [`Rejection`] (which rule, what matched), counted in
//!    `fanfare_content_rejected_total{rule}` and sent as `content_rejected`.
//!
//! The caller awaits the check inside its command, so a connection's
//! publications keep their order; other connections run on their own
//! tasks and never wait for this one's hook.

mod hook;
mod json_text;
mod links;
mod rejection;
mod rules;

use std::time::Instant;

use fanfare_hub::ConnId;
use fanfare_protocol::{ChannelName, JsonData};

use crate::config::content::{HookFailure, HookSettings};
use crate::config::{NamespaceSettings, Settings};
use hook::{HookAnswer, HookClient, HookRequest};
pub(crate) use rejection::{Rejection, Rule};
use rules::apply_text_rules;

/// A client's publication, as the rules and the hook see it.
pub(crate) struct ClientPublication<'a> {
    pub channel: &'a ChannelName,
    pub event: Option<&'a str>,
    pub data: JsonData,
    /// `None` for an anonymous connection.
    pub user: Option<&'a str>,
    pub connection: ConnId,
    /// A Pusher connection's `socket_id`.
    pub socket_id: Option<&'a str>,
    /// `native` or `pusher`.
    pub protocol: &'static str,
    /// The largest `data` a rewrite may return, in bytes.
    pub max_bytes: usize,
}

/// The content rules' shared part: the hook's HTTP client.
pub(crate) struct ContentCheck {
    /// `None` when no namespace has a hook.
    hook: Option<HookClient>,
}

impl ContentCheck {
    /// Builds the hook client when some namespace has a hook (trusting
    /// `tls.webhook_ca_file`'s `extra_roots` too).
    pub fn new(settings: &Settings, extra_roots: &[reqwest::Certificate]) -> anyhow::Result<Self> {
        let namespaces = &settings.namespaces;
        let hooks: Vec<&HookSettings> = std::iter::once(namespaces.defaults())
            .chain(namespaces.configured().into_iter().map(|(_, settings)| settings))
            .filter_map(|settings| settings.content.hook.as_ref())
            .collect();
        if hooks.is_empty() {
            return Ok(Self { hook: None });
        }
        let any_https = hooks.iter().any(|hook| hook.url.scheme() == "https");
        Ok(Self { hook: Some(HookClient::new(any_https, extra_roots)?) })
    }

    /// The data to publish (unchanged, masked, stripped or rewritten), or
    /// why not. Steps 1 to 3 of the module's doc.
    pub async fn check(
        &self,
        namespace: &NamespaceSettings,
        publication: ClientPublication<'_>,
    ) -> Result<JsonData, Rejection> {
        let rules = &namespace.content;
        if !rules.is_active() {
            return Ok(publication.data);
        }
        let outcome = self.apply(namespace, publication).await;
        if let Err(rejection) = &outcome {
            metrics::counter!("fanfare_content_rejected_total", "rule" => rejection.rule.as_str())
                .increment(1);
        }
        outcome
    }

    async fn apply(
        &self,
        namespace: &NamespaceSettings,
        mut publication: ClientPublication<'_>,
    ) -> Result<JsonData, Rejection> {
        let rules = &namespace.content;
        if let Some(edited) = apply_text_rules(rules, publication.data.as_str())? {
            metrics::counter!("fanfare_content_masked_total").increment(1);
            publication.data = JsonData::parse(edited).expect("edited JSON stays valid");
        }
        match (&rules.hook, &self.hook) {
            (Some(settings), Some(client)) => ask_hook(client, settings, publication).await,
            _ => Ok(publication.data),
        }
    }
}

/// Step 2: the hook's answer, or its failure handled by `failure`.
async fn ask_hook(
    client: &HookClient,
    settings: &HookSettings,
    publication: ClientPublication<'_>,
) -> Result<JsonData, Rejection> {
    let request = HookRequest {
        namespace: publication.channel.namespace(),
        channel: publication.channel.as_str(),
        event: publication.event,
        data: &publication.data,
        user: publication.user.filter(|user| !user.is_empty()),
        connection: publication.connection.to_string(),
        socket_id: publication.socket_id,
        protocol: publication.protocol,
        time_ms: hook::now_ms(),
    };
    let started = Instant::now();
    let answer = client.ask(settings, &request, publication.max_bytes).await;
    let outcome = match &answer {
        Ok(HookAnswer::Allow) => "allow",
        Ok(HookAnswer::Reject { .. }) => "reject",
        Ok(HookAnswer::Rewrite { .. }) => "rewrite",
        Err(_) => "failure",
    };
    metrics::histogram!("fanfare_content_hook_seconds", "outcome" => outcome).record(started.elapsed());
    match answer {
        Ok(HookAnswer::Allow) => Ok(publication.data),
        Ok(HookAnswer::Reject { reason }) => Err(Rejection::with_detail(Rule::Hook, reason)),
        Ok(HookAnswer::Rewrite { data }) => Ok(data),
        Err(error) => {
            metrics::counter!("fanfare_content_hook_failures_total", "cause" => error.cause()).increment(1);
            tracing::warn!(url = %settings.url, channel = %publication.channel, %error, detail = ?error, "pre-publish hook failed");
            match settings.failure {
                HookFailure::Open => Ok(publication.data),
                HookFailure::Closed => {
                    Err(Rejection::with_detail(Rule::HookFailure, Some(error.to_string())))
                }
            }
        }
    }
}
