//! Built-in TLS (`[tls]`): the Rust client over `wss://`, the HTTP API over
//! `https://`, a certificate replaced on disk served after SIGHUP (the real
//! binary), and signed webhooks to an `https://` receiver trusted through
//! `tls.webhook_ca_file`'s roots. Certificates come from a CA made here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use fanfare::config::CertificateFiles;
use fanfare::pusher::webhooks::WebhookStores;
use fanfare::tls::{Certificates, TlsListener};
use fanfare_client::{Client, ClientOptions, SubscriptionEvent};
use fanfare_protocol::pusher::verify_webhook;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::process::{signal, spawn, write_whole};
use crate::pusher_api::{PusherConn, webhooks_keeping, webhooks_with};
use crate::support::{TestServer, eventually, metric_value};

const KEY: &str = "0123456789abcdef0123";
const WAIT: Duration = Duration::from_secs(15);

/// A certificate authority of the test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Fanfare test CA");
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for 127.0.0.1 and localhost, written whole (renamed
    /// into place) as `name.crt` and `name.key` in `dir`; also its DER.
    fn leaf(&self, dir: &Path, name: &str) -> (CertificateFiles, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = CertificateFiles {
            cert_file: dir.join(format!("{name}.crt")),
            key_file: dir.join(format!("{name}.key")),
        };
        write_whole(&files.cert_file, &cert.pem());
        write_whole(&files.key_file, &key.serialize_pem());
        (files, cert.der().to_vec())
    }

    fn client_tls(&self) -> Arc<fanfare_client::rustls::ClientConfig> {
        fanfare_client::trusting(self.pem().as_bytes()).unwrap()
    }

    fn http(&self) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.pem().as_bytes()).unwrap();
        reqwest::Client::builder().tls_certs_only([root]).timeout(WAIT).build().unwrap()
    }
}

/// The certificate a TLS handshake with `port` is shown.
async fn served_certificate(port: u16, ca: &TestCa) -> Vec<u8> {
    let connector = tokio_rustls::TlsConnector::from(ca.client_tls());
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn next_publication(subscription: &mut fanfare_client::Subscription) -> Value {
    loop {
        match tokio::time::timeout(WAIT, subscription.next()).await.unwrap() {
            Some(SubscriptionEvent::Publication { publication, .. }) => {
                return serde_json::from_str(publication.data.as_str()).unwrap();
            }
            Some(_) => continue,
            None => panic!("the subscription ended"),
        }
    }
}

#[tokio::test]
async fn wss_and_https_serve_clients_and_sighup_serves_a_replaced_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (files, first) = ca.leaf(dir.path(), "server");
    let config = dir.path().join("fanfare.toml");
    let toml = format!(
        "api_key = \"{KEY}\"\n\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        files.cert_file.display().to_string(),
        files.key_file.display().to_string()
    );
    write_whole(&config, &toml);
    let (mut child, addr, mut log) = spawn(&config, &dir.path().join("data")).await;
    let port = addr.port();
    assert_eq!(served_certificate(port, &ca).await, first);

    let url = format!("wss://127.0.0.1:{port}/connection/websocket");
    let client =
        Client::connect(ClientOptions { tls: Some(ca.client_tls()), ..ClientOptions::new(url.clone()) })
            .await
            .unwrap();
    let mut news = client.subscribe("news", None).await.unwrap();
    let http = ca.http();
    let publish = |text: &'static str| {
        http.post(format!("https://127.0.0.1:{port}/api/publish"))
            .bearer_auth(KEY)
            .json(&json!({"channel": "news", "data": {"text": text}}))
            .send()
    };
    assert_eq!(publish("over tls").await.unwrap().status(), 200);
    assert_eq!(next_publication(&mut news).await, json!({"text": "over tls"}));

    // Plain WebSocket and plain HTTP to the TLS port are refused.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/connection/websocket"))
            .await
            .is_err()
    );
    let untrusted = Client::connect(ClientOptions {
        connect_timeout: Duration::from_secs(2),
        backoff: fanfare_client::Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
        },
        ..ClientOptions::new(url)
    });
    assert!(untrusted.await.is_err(), "Mozilla's roots do not include the test CA");
    // The server counts a failed handshake in the handshake's task, which
    // may end after the client has given up.
    let failures = || async {
        let metrics = http.get(format!("https://127.0.0.1:{port}/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        metric_value(&metrics, "fanfare_handshake_failures_total{cause=\"tls_handshake\"}")
    };
    eventually("both failed handshakes counted", || async { failures().await >= 2.0 }).await;

    // Renewed: the same paths, a new certificate, then SIGHUP.
    let (_, second) = ca.leaf(dir.path(), "server");
    assert_ne!(first, second);
    signal(&child, "-HUP");
    log.until("SIGHUP: TLS certificate reloaded").await;
    assert_eq!(served_certificate(port, &ca).await, second);
    // The connection opened before keeps going.
    assert_eq!(publish("after the reload").await.unwrap().status(), 200);
    assert_eq!(next_publication(&mut news).await, json!({"text": "after the reload"}));

    // A key that does not load: the renewed certificate stays.
    write_whole(&files.key_file, "not a key\n");
    signal(&child, "-HUP");
    log.until("SIGHUP: TLS certificate not reloaded; the current one stays").await;
    assert_eq!(served_certificate(port, &ca).await, second);

    client.close().await;
    signal(&child, "-TERM");
    assert!(tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap().success());
}

#[tokio::test]
async fn a_certificate_that_does_not_load_stops_the_start_with_its_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("empty.crt");
    std::fs::write(&cert, "").unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("FANFARE_TLS_CERT_FILE", &cert)
        .env("FANFARE_TLS_KEY_FILE", &cert)
        .env("FANFARE_API_KEY", KEY)
        .env_remove("FANFARE_CONFIG")
        .output();
    let output = tokio::time::timeout(WAIT, output).await.unwrap().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loading the TLS certificate") && stderr.contains("empty.crt"), "{stderr}");
}

/// A webhook receiver over TLS (the server's own listener, with `files`),
/// reporting each POST; answers 200.
async fn tls_receiver(files: &CertificateFiles) -> (String, mpsc::Receiver<(HeaderMap, Bytes)>) {
    async fn receive(
        axum::extract::State(posts): axum::extract::State<mpsc::Sender<(HeaderMap, Bytes)>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        let _ = posts.send((headers, body)).await;
        "ok"
    }
    let (tx, rx) = mpsc::channel(100);
    let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(tx);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/hooks", tcp.local_addr().unwrap().port());
    let certificates = Arc::new(Certificates::load(files).unwrap());
    let listener = TlsListener::new(tcp, certificates, true, WAIT).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn an_https_webhook_receiver_gets_signed_events() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (files, _) = ca.leaf(dir.path(), "receiver");
    let (url, mut posts) = tls_receiver(&files).await;
    let server = TestServer::with_config(crate::pusher_api::APPS).await;

    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
    let stores = WebhookStores::in_data_dir(&server.app.settings.data_dir);
    let _webhooks = webhooks_with(&server, &url, stores, |options| options.extra_roots = vec![root]);

    let mut pusher = PusherConn::open(&server, "key-1").await;
    pusher.subscribe("news", "", None).await;
    let (headers, body) = tokio::time::timeout(WAIT, posts.recv()).await.unwrap().unwrap();
    assert!(verify_webhook("secret-1", &body, headers["x-pusher-signature"].to_str().unwrap()));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&body["events"][0]["name"], &body["events"][0]["channel"]),
        (&json!("channel_occupied"), &json!("news"))
    );
}

#[tokio::test]
async fn a_webhook_receiver_with_an_untrusted_certificate_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (files, _) = ca.leaf(dir.path(), "receiver");
    let (url, mut posts) = tls_receiver(&files).await;
    let server = TestServer::with_config(crate::pusher_api::APPS).await;
    let stores = WebhookStores::in_data_dir(&server.app.settings.data_dir);
    let webhooks = webhooks_keeping(&server, &url, stores);
    let mut pusher = PusherConn::open(&server, "key-1").await;
    pusher.subscribe("news", "", None).await;
    eventually("a dead letter for the untrusted receiver", || async {
        !webhooks.dead_letters(1).await.unwrap().is_empty()
    })
    .await;
    let letter = &webhooks.dead_letters(1).await.unwrap()[0];
    assert!(letter["error"].as_str().unwrap().contains("UnknownIssuer"), "{letter}");
    assert!(posts.try_recv().is_err(), "nothing reached the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanfare_bench_runs_over_wss_and_https_trusting_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (files, _) = ca.leaf(dir.path(), "server");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server = TestServer::with_settings("", |settings| settings.tls.certificate = Some(files)).await;

    let mut options =
        fanfare_bench::BenchOptions::new(fanfare_bench::Scenario::Fanout, format!("https://{}", server.addr));
    options.api_key = Some(crate::support::API_KEY.to_string());
    options.connections = 10;
    options.messages = Some(20);
    options.duration = Duration::from_secs(5);
    options.drain_timeout = Duration::from_secs(10);
    options.timeout = Some(Duration::from_secs(60));
    options.progress = false;
    let untrusted = fanfare_bench::run(&options).await;
    assert!(
        untrusted.is_err() || !untrusted.unwrap().integrity_ok(),
        "Mozilla's roots do not include the test CA"
    );

    options.ca_file = Some(ca_file);
    let report = fanfare_bench::run(&options).await.unwrap();
    let delivery = report.delivery.as_ref().expect("a delivery report");
    assert_eq!((delivery.expected, delivery.delivered, delivery.lost), (200, 200, 0), "{report}");
    assert!(report.integrity_ok() && report.errors.is_empty(), "{report}");
}

#[tokio::test]
async fn over_wss_the_per_address_limit_knows_the_peer_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (files, _) = ca.leaf(dir.path(), "server");
    let server = TestServer::with_settings("[limits]\nmax_connections_per_ip = 1\n", |settings| {
        settings.tls.certificate = Some(files);
    })
    .await;
    let url = format!("wss://127.0.0.1:{}/connection/websocket", server.addr.port());
    let connect = || {
        let connector = tokio_tungstenite::Connector::Rustls(ca.client_tls());
        tokio_tungstenite::connect_async_tls_with_config(url.clone(), None, false, Some(connector))
    };
    let _first = connect().await.expect("the address's one connection");
    match connect().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "5");
        }
        other => {
            panic!("a second connection from 127.0.0.1 over wss was not refused: {:?}", other.map(|_| ()))
        }
    }
}
