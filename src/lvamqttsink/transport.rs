//! The MQTT side of `lvamqttsink`: a [`Transport`] over rumqttc's synchronous client (MQTT
//! 3.1.1), and the TLS client configuration (rustls with ring).
//!
//! Each `connect` makes a fresh rumqttc client and event loop, so nothing the library held from
//! a failed connection is sent again behind the worker's back: the worker re-sends what was
//! unconfirmed itself. Packet ids map back to documents: rumqttc reports `Outgoing::Publish(pkid)`
//! for the publishes in the order they were handed over, and `PubAck` (QoS 1) or `PubComp`
//! (QoS 2) confirms them. At QoS 0 a document counts as delivered once written to the
//! connection.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event, MqttOptions, NetworkOptions,
    Outgoing, Packet, QoS, RecvTimeoutError, TlsConfiguration,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::publish::Body;
use crate::publish::queue::Doc;
use crate::publish::worker::{Outcome, Transport, TransportError};

/// The system's CA bundles, the first that exists is trusted besides `ca-file`.
const SYSTEM_CA_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The largest MQTT packet (the protocol's limit, 256 MiB).
const MAX_PACKET: usize = 268_435_455;

/// Everything needed to connect and publish, checked.
#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub keep_alive: Duration,
    pub clean_session: bool,
    pub max_in_flight: u16,
}

fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(format!(
            "{what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The rustls client configuration: the system's CAs plus `ca_file`, and a client certificate
/// when `client` (certificate file, key file) is given.
pub fn tls_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(system) = SYSTEM_CA_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
    {
        for cert in read_certificates(system, "the system CA bundle").unwrap_or_default() {
            let _ = roots.add(cert);
        }
    }
    if let Some(ca) = ca_file {
        for cert in read_certificates(ca, "ca-file")? {
            roots
                .add(cert)
                .map_err(|e| format!("ca-file {}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let certs = read_certificates(cert_file, "cert-file")?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                format!(
                    "key-file {} holds no readable PEM private key: {e}",
                    key_file.display()
                )
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("cert-file and key-file do not go together: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

/// A connection error in words, with what to do about it.
pub fn describe(e: &ConnectionError, host: &str, port: u16) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadUserNamePassword => {
                "the broker refused the user name or password (check username and password)".into()
            }
            ConnectReturnCode::NotAuthorized => {
                "the broker refused the connection as not authorized (check username, password \
                 and the broker's access rules)"
                    .into()
            }
            ConnectReturnCode::BadClientId => {
                "the broker refused the client id (set another client-id)".into()
            }
            ConnectReturnCode::RefusedProtocolVersion => {
                "the broker does not speak MQTT 3.1.1".into()
            }
            ConnectReturnCode::ServiceUnavailable => "the broker is unavailable".into(),
            ConnectReturnCode::Success => "connected".into(),
        },
        ConnectionError::Io(io) => format!("{host}:{port}: {io}"),
        ConnectionError::Tls(tls) => format!(
            "TLS with {host}:{port} failed: {tls} (check tls, ca-file, and that the broker's \
             certificate names the host)"
        ),
        ConnectionError::NetworkTimeout => format!("no answer from {host}:{port} in time"),
        other => format!("{host}:{port}: {other}"),
    }
}

/// The MQTT [`Transport`].
pub struct MqttTransport {
    config: MqttConfig,
    connection: Option<(Client, Connection)>,
    /// Documents handed to the client, in order, whose packet id is not known yet.
    unassigned: VecDeque<u64>,
    /// Packet id → document, waiting for PubAck / PubComp.
    pending: HashMap<u16, u64>,
}

impl MqttTransport {
    pub fn new(config: MqttConfig) -> MqttTransport {
        MqttTransport {
            config,
            connection: None,
            unassigned: VecDeque::new(),
            pending: HashMap::new(),
        }
    }

    fn error(&self, e: &ConnectionError) -> TransportError {
        TransportError(describe(e, &self.config.host, self.config.port))
    }

    fn options(&self) -> MqttOptions {
        let c = &self.config;
        let mut options = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
        options
            .set_keep_alive(c.keep_alive)
            .set_clean_session(c.clean_session)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_inflight(c.max_in_flight.max(1));
        if let Some((user, password)) = &c.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        if let Some(tls) = &c.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(
                TlsConfiguration::Rustls(tls.clone()),
            ));
        }
        options
    }

    fn handle(&mut self, event: Event, outcomes: &mut Vec<Outcome>) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(sequence) = self.unassigned.pop_front() {
                    if self.config.qos == QoS::AtMostOnce {
                        outcomes.push(Outcome::Delivered(sequence));
                    } else {
                        self.pending.insert(pkid, sequence);
                    }
                }
            }
            Event::Incoming(Packet::PubAck(ack)) if self.config.qos == QoS::AtLeastOnce => {
                if let Some(sequence) = self.pending.remove(&ack.pkid) {
                    outcomes.push(Outcome::Delivered(sequence));
                }
            }
            Event::Incoming(Packet::PubComp(comp)) if self.config.qos == QoS::ExactlyOnce => {
                if let Some(sequence) = self.pending.remove(&comp.pkid) {
                    outcomes.push(Outcome::Delivered(sequence));
                }
            }
            _ => {}
        }
    }
}

impl Transport for MqttTransport {
    fn connect(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.disconnect();
        let options = self.options();
        // Room for every document the worker may have in flight, and a disconnect.
        let capacity = usize::from(self.config.max_in_flight) + 8;
        let (client, mut connection) = Client::new(options, capacity);
        let mut network = NetworkOptions::new();
        network.set_connection_timeout(timeout.as_secs().max(1));
        connection.eventloop.set_network_options(network);
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match connection.recv_timeout(left) {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(self.error(&e)),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(TransportError(format!(
                        "no answer from {}:{} within {timeout:?}",
                        self.config.host, self.config.port
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(TransportError("the MQTT client stopped".into()));
                }
            }
        }
        self.connection = Some((client, connection));
        Ok(())
    }

    fn send(&mut self, doc: &Doc<Body>) -> Result<(), TransportError> {
        let (client, _) = self
            .connection
            .as_ref()
            .ok_or_else(|| TransportError("not connected".into()))?;
        client
            .try_publish(
                self.config.topic.as_str(),
                self.config.qos,
                self.config.retain,
                doc.body.as_ref().to_vec(),
            )
            .map_err(|e| TransportError(format!("cannot hand the document to the client: {e}")))?;
        self.unassigned.push_back(doc.sequence);
        Ok(())
    }

    fn poll(
        &mut self,
        timeout: Duration,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), TransportError> {
        let mut deadline = Instant::now() + timeout;
        // Bounded: a busy connection must not keep the worker here forever.
        for _ in 0..10_000 {
            let Some((_, connection)) = self.connection.as_mut() else {
                return Err(TransportError("not connected".into()));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let event = match connection.recv_timeout(left) {
                Ok(Ok(event)) => event,
                Ok(Err(e)) => return Err(self.error(&e)),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(TransportError("the MQTT client stopped".into()));
                }
            };
            self.handle(event, outcomes);
            if !outcomes.is_empty() {
                // Take what else is ready, then return.
                deadline = Instant::now();
            }
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Some((client, mut connection)) = self.connection.take() {
            // A clean DISCONNECT when the connection still works; a short wait at most.
            if client.try_disconnect().is_ok() {
                let deadline = Instant::now() + Duration::from_millis(200);
                while let Ok(Ok(event)) =
                    connection.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            }
        }
        self.unassigned.clear();
        self.pending.clear();
    }
}
