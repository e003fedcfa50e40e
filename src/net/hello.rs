//! The two request-response protocols of a chat node, both one CBOR message per stream and
//! direction (the writer closes its side; the reader reads to the end with a size cap):
//!
//! - `/chitty-chat/hello/1` (docs/PROTOCOL.md, "Hello"): on every new connection both sides send
//!   their room, their Lamport clock and the participants they know.
//! - `/chitty-chat/sync/1` (docs/PROTOCOL.md, "Sync"): "here is what I have", answered with a
//!   page of what the asker lacks.

use std::io;
use std::marker::PhantomData;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;

use crate::core::hello::Hello;
use crate::core::sync::{SyncRequest, SyncResponse};
use crate::wire::{self, WireError};

/// The hello protocol id.
pub const HELLO_PROTOCOL: StreamProtocol = StreamProtocol::new("/chitty-chat/hello/1");
/// The sync protocol id.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/chitty-chat/sync/1");

/// A request-response protocol: its messages, their encoding and their size cap.
pub trait Messages: Send + 'static {
    /// What the asker sends.
    type Request: Send;
    /// What the answerer sends back.
    type Response: Send;
    /// The largest message accepted, either way.
    const MAX_BYTES: usize;
    /// Encodes a request.
    fn encode_request(r: &Self::Request) -> Vec<u8>;
    /// Decodes a request.
    fn decode_request(b: &[u8]) -> Result<Self::Request, WireError>;
    /// Encodes a response.
    fn encode_response(r: &Self::Response) -> Vec<u8>;
    /// Decodes a response.
    fn decode_response(b: &[u8]) -> Result<Self::Response, WireError>;
}

/// The hello exchange: a hello each way.
#[derive(Debug)]
pub enum HelloMessages {}

impl Messages for HelloMessages {
    type Request = Hello;
    type Response = Hello;
    const MAX_BYTES: usize = wire::MAX_HELLO_BYTES;
    fn encode_request(r: &Hello) -> Vec<u8> {
        wire::encode_hello(r)
    }
    fn decode_request(b: &[u8]) -> Result<Hello, WireError> {
        wire::decode_hello(b)
    }
    fn encode_response(r: &Hello) -> Vec<u8> {
        wire::encode_hello(r)
    }
    fn decode_response(b: &[u8]) -> Result<Hello, WireError> {
        wire::decode_hello(b)
    }
}

/// A sync response as received: the events that verified, and the errors of those that did not.
pub type ReceivedSync = (SyncResponse, Vec<WireError>);

/// The sync exchange.
#[derive(Debug)]
pub enum SyncMessages {}

impl Messages for SyncMessages {
    type Request = SyncRequest;
    type Response = SyncResponseOut;
    const MAX_BYTES: usize = wire::MAX_SYNC_BYTES;
    fn encode_request(r: &SyncRequest) -> Vec<u8> {
        wire::encode_sync_request(r)
    }
    fn decode_request(b: &[u8]) -> Result<SyncRequest, WireError> {
        wire::decode_sync_request(b)
    }
    fn encode_response(r: &SyncResponseOut) -> Vec<u8> {
        match r {
            SyncResponseOut::Send(resp) => wire::encode_sync_response(resp),
            SyncResponseOut::Received(_) => Vec::new(),
        }
    }
    fn decode_response(b: &[u8]) -> Result<SyncResponseOut, WireError> {
        wire::decode_sync_response(b).map(SyncResponseOut::Received)
    }
}

/// A sync response going out, or one that came in with its per-event verdicts.
#[derive(Debug)]
pub enum SyncResponseOut {
    /// Ours, to send.
    Send(SyncResponse),
    /// A peer's, decoded.
    Received(ReceivedSync),
}

/// The request-response codec of protocol `M`.
pub struct CborCodec<M>(PhantomData<fn() -> M>);

impl<M> Default for CborCodec<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<M> Clone for CborCodec<M> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // One byte more than the cap, so that an oversized message is seen as such.
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    Ok(buf)
}

fn invalid(e: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<M: Messages> request_response::Codec for CborCodec<M> {
    type Protocol = StreamProtocol;
    type Request = M::Request;
    type Response = M::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<M::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        M::decode_request(&read_capped(io, M::MAX_BYTES).await?).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<M::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        M::decode_response(&read_capped(io, M::MAX_BYTES).await?).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: M::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&M::encode_request(&req)).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: M::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&M::encode_response(&res)).await
    }
}

/// The hello codec.
pub type HelloCodec = CborCodec<HelloMessages>;
/// The sync codec.
pub type SyncCodec = CborCodec<SyncMessages>;
