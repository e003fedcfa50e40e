//! The hello protocol `/chitty-chat/hello/1` (docs/PROTOCOL.md, "Hello"): a request-response
//! exchange on every new connection, in which both sides send their room, their Lamport clock
//! and the participants they know. It is what lets a joiner stamp its join after the room's past.
//!
//! One CBOR hello per stream in each direction; the writer closes its side after writing, the
//! reader reads to the end with a size cap.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;

use crate::core::room::Hello;
use crate::wire;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/chitty-chat/hello/1");

/// Reads and writes hellos with the [`wire`] encoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct HelloCodec;

async fn read_hello<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Hello> {
    let mut buf = Vec::new();
    // One byte more than the cap, so that an oversized hello is seen as such.
    io.take(wire::MAX_HELLO_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    wire::decode_hello(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_hello<T: AsyncWrite + Unpin + Send>(io: &mut T, hello: Hello) -> io::Result<()> {
    io.write_all(&wire::encode_hello(&hello)).await
}

impl request_response::Codec for HelloCodec {
    type Protocol = StreamProtocol;
    type Request = Hello;
    type Response = Hello;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Hello>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_hello(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Hello>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_hello(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Hello,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_hello(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Hello,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_hello(io, res).await
    }
}
