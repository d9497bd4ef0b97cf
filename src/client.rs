//! A small Kafka client: one connection to one broker (plain or TLS, logged in with SASL
//! PLAIN or SCRAM when asked), requests in the versions the caller asks for, checked against
//! what the broker offers in ApiVersions. The admin commands use it, and brokers in shared
//! mode to reach each other (`handlers::peers`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::scram::{ScramClient, SCRAM_SHA_256, SCRAM_SHA_512};
use crate::config::{SaslLogin, SaslMechanism};

/// How long a request may take before the command gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What a connection reads and writes: a socket, or TLS over one.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Stream for T {}

#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: Box<dyn Stream>,
    next_id: i32,
    /// The client id and software name it sends.
    name: &'static str,
    /// api key -> (min, max) version the broker serves.
    versions: HashMap<i16, (i16, i16)>,
    /// When a SASL session must be renewed, if the broker limits its lifetime.
    session_ends: Option<Instant>,
}

impl Connection {
    /// Connects as the admin commands do and asks the broker which API versions it serves.
    pub async fn open(address: &str) -> anyhow::Result<Self> {
        Self::open_as(address, "gregor-cli").await
    }

    /// Connects with `name` as client id and software name and asks the broker which API
    /// versions it serves.
    pub async fn open_as(address: &str, name: &'static str) -> anyhow::Result<Self> {
        Self::open_with(address, name, None, None).await
    }

    /// [`Connection::open_as`], over TLS when `tls` is given (the broker's certificate must be
    /// valid for the host part of `address`), logged in with `sasl` when it is given.
    pub async fn open_with(
        address: &str,
        name: &'static str,
        tls: Option<&tokio_rustls::TlsConnector>,
        sasl: Option<&SaslLogin>,
    ) -> anyhow::Result<Self> {
        let socket = tokio::time::timeout(TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {address} timed out"))?
            .with_context(|| format!("cannot connect to {address}"))?;
        let _ = socket.set_nodelay(true);
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(socket),
            Some(connector) => {
                let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let server = rustls_pki_types::ServerName::try_from(host.to_string())
                    .with_context(|| format!("{host} is not a host name or address TLS can verify"))?;
                let tls = tokio::time::timeout(TIMEOUT, connector.connect(server, socket))
                    .await
                    .map_err(|_| anyhow::anyhow!("the TLS handshake with {address} timed out"))?
                    .with_context(|| format!("TLS handshake with {address}"))?;
                Box::new(tls)
            }
        };
        let mut c = Self {
            address: address.to_string(),
            stream,
            next_id: 1,
            name,
            versions: HashMap::new(),
            session_ends: None,
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp = c.send(3, &req).await?;
        if resp.error_code != 0 {
            bail!("{address} answered ApiVersions with error code {}", resp.error_code);
        }
        c.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        if let Some(login) = sasl {
            c.log_in(login).await?;
        }
        Ok(c)
    }

    /// Whether the broker's SASL session lifetime (KIP-368) is nearly over: the broker would
    /// close the connection at its next request after the end, so the caller opens a new one.
    pub fn session_ending(&self) -> bool {
        self.session_ends.is_some_and(|end| Instant::now() >= end)
    }

    /// SaslHandshake v1 then SaslAuthenticate v2, as Kafka's clients log in: PLAIN in one
    /// round, SCRAM in two (the server's proof checked).
    async fn log_in(&mut self, login: &SaslLogin) -> anyhow::Result<()> {
        let mechanism = login.mechanism.kafka_name();
        let handshake =
            self.call(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))).await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!(
                "{} does not log in with {mechanism} (error {}); it offers {}",
                self.address,
                handshake.error_code,
                offered.join(", ")
            );
        }
        let (user, password) = (login.username.as_str(), login.password.0.as_str());
        let lifetime_ms = match login.mechanism {
            SaslMechanism::Plain => self.authenticate(format!("\0{user}\0{password}").into_bytes()).await?.1,
            SaslMechanism::ScramSha256 => self.scram(ScramClient::new(SCRAM_SHA_256, user, password)).await?,
            SaslMechanism::ScramSha512 => self.scram(ScramClient::new(SCRAM_SHA_512, user, password)).await?,
            SaslMechanism::OAuthBearer => bail!("this client does not log in with OAUTHBEARER"),
        };
        // Log in again (on a new connection) well before the broker's deadline.
        self.session_ends =
            (lifetime_ms > 0).then(|| Instant::now() + Duration::from_millis(lifetime_ms as u64 * 9 / 10));
        Ok(())
    }

    /// SCRAM's two rounds; returns the session lifetime.
    async fn scram(&mut self, mut scram: ScramClient) -> anyhow::Result<i64> {
        let (server_first, _) = self.authenticate(scram.first()).await?;
        let proof = scram.answer(&server_first).map_err(|e| anyhow::anyhow!("{}: {e}", self.address))?;
        let (server_final, lifetime_ms) = self.authenticate(proof).await?;
        scram.verify(&server_final).map_err(|e| anyhow::anyhow!("{}: {e}", self.address))?;
        Ok(lifetime_ms)
    }

    /// One SaslAuthenticate round: the broker's bytes and session lifetime, or its refusal.
    async fn authenticate(&mut self, token: Vec<u8>) -> anyhow::Result<(Bytes, i64)> {
        let r = self.call(2, &SaslAuthenticateRequest::default().with_auth_bytes(token.into())).await?;
        if r.error_code != 0 {
            let message = r.error_message.map_or_else(|| format!("error {}", r.error_code), |m| m.to_string());
            bail!("{} refused the SASL login: {message}", self.address);
        }
        Ok((r.auth_bytes, r.session_lifetime_ms))
    }

    /// Sends `req` in `version` (the broker must serve it) and returns the response.
    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<R::Response> {
        self.call_within(version, req, TIMEOUT).await
    }

    /// [`Connection::call`] for a request the broker may hold for up to `timeout` (JoinGroup).
    pub async fn call_within<R: Request>(
        &mut self,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> anyhow::Result<R::Response> {
        self.check_version::<R>(version)?;
        let id = self.write(version, req).await?;
        self.read::<R>(version, id, timeout).await
    }

    /// [`Connection::call`] for an API brokers serve each other without advertising it
    /// (gregor's share-partition resets): not checked against the broker's ApiVersions. A
    /// broker that does not serve it closes the connection.
    pub async fn call_unadvertised<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<R::Response> {
        let id = self.write(version, req).await?;
        self.read::<R>(version, id, TIMEOUT).await
    }

    /// Sends `req` and reads no response (a Produce with acks=0 gets none).
    pub async fn send_only<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<()> {
        self.check_version::<R>(version)?;
        self.write(version, req).await.map(|_| ())
    }

    fn check_version<R: Request>(&self, version: i16) -> anyhow::Result<()> {
        match self.versions.get(&R::KEY) {
            Some(&(min, max)) if (min..=max).contains(&version) => Ok(()),
            Some(&(min, max)) => {
                bail!("{} serves API {} in versions {min}-{max}, this command needs {version}", self.address, R::KEY)
            }
            None => bail!("{} does not serve API {}", self.address, R::KEY),
        }
    }

    async fn send<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<R::Response> {
        let id = self.write(version, req).await?;
        self.read::<R>(version, id, TIMEOUT).await
    }

    /// Writes one request; returns its correlation id.
    async fn write<R: Request>(&mut self, version: i16, req: &R) -> anyhow::Result<i32> {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str(self.name)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        req.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        tokio::time::timeout(TIMEOUT, self.stream.write_all(&buf))
            .await
            .map_err(|_| anyhow::anyhow!("{} took no request for {}s", self.address, TIMEOUT.as_secs()))?
            .with_context(|| format!("talking to {}", self.address))?;
        Ok(id)
    }

    /// Reads the response to request `id`.
    async fn read<R: Request>(&mut self, version: i16, id: i32, timeout: Duration) -> anyhow::Result<R::Response> {
        let exchange = async {
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await?;
            let size = i32::from_be_bytes(size);
            if !(4..=256 << 20).contains(&size) {
                bail!("{} sent a response frame of {size} bytes", self.address);
            }
            let mut frame = vec![0u8; size as usize];
            self.stream.read_exact(&mut frame).await?;
            Ok(Bytes::from(frame))
        };
        let mut frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("{} did not answer within {}s", self.address, timeout.as_secs()))?
            .with_context(|| format!("talking to {}", self.address))?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        if header.correlation_id != id {
            bail!("{} answered out of order", self.address);
        }
        R::Response::decode(&mut frame, version)
    }
}
