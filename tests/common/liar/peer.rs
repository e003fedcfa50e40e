//! The liar's task: one swarm (TCP, Noise, Yamux, anonymous gossipsub, identify, ping, hello
//! and sync as raw CBOR request-response), driven by [`Cmd`]s and reporting [`Seen`]s.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, gossipsub, identify, noise, ping, tcp, yamux};
use serde_cbor::Value;
use tokio::sync::mpsc;

use super::wire::{
    C, HelloMsg, Signed, get, get_bytes, get_text, get_u64, ordered, read_event, uint,
};
use super::{Cmd, HELLO, PAGE, PAGE_BYTES, REQUEST_TIMEOUT, SYNC, Seen, TOPIC};

#[derive(NetworkBehaviour)]
struct LiarBehaviour {
    gossipsub: gossipsub::Behaviour,
    hello: request_response::Behaviour<RawCodec>,
    sync: request_response::Behaviour<RawCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// One raw CBOR message per stream and direction, read to the end up to `max` bytes
/// (sections 4 and 6).
#[derive(Clone)]
struct RawCodec {
    max: usize,
}

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    Ok(buf)
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_capped(io, self.max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let r = read_capped(io, self.max).await?;
        // A stream closed with nothing on it: the request went unanswered.
        if r.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
        }
        Ok(r)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&r).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&r).await?;
        io.close().await
    }
}

/// The liar's state, driven by its task.
struct State {
    hello: HelloMsg,
    history: Vec<Signed>,
    clock: u64,
    seen: std_mpsc::SyncSender<Seen>,
    lost_reports: u64,
    /// The tags of our pending hello requests.
    tags: HashMap<request_response::OutboundRequestId, u64>,
    /// A sniffer: every gossip message is reported as it came ([`Seen::Raw`]).
    raw: bool,
}

impl State {
    fn report(&mut self, s: Seen) {
        if self.seen.try_send(s).is_err() {
            self.lost_reports += 1;
        }
    }

    fn merge(&mut self, lamport: u64) {
        self.clock = self.clock.max(lamport);
    }

    /// A page of history for a sync request: what the summary does not cover, after `low`,
    /// oldest first, at most [`PAGE`] events and [`PAGE_BYTES`].
    fn page(&self, request: &[u8]) -> Result<(Vec<Value>, bool), String> {
        let v: Value = serde_cbor::from_slice(request).map_err(|e| format!("not CBOR: {e}"))?;
        let topic = get_text(&v, "topic").ok_or("sync request without topic")?;
        if topic != self.hello.topic {
            return Ok((vec![], false));
        }
        let low = match get(&v, "low") {
            Some(Value::Null) | None => None,
            Some(k) => Some((
                get_u64(k, "lamport").ok_or("low without lamport")?,
                get_bytes(k, "author").ok_or("low without author")?,
                get_u64(k, "seq").ok_or("low without seq")?,
            )),
        };
        let mut have: HashMap<Vec<u8>, Vec<(u64, u64)>> = HashMap::new();
        if let Some(Value::Array(list)) = get(&v, "have") {
            for h in list {
                let author = get_bytes(h, "author").ok_or("have without author")?;
                let mut ranges = Vec::new();
                if let Some(Value::Array(rs)) = get(h, "ranges") {
                    for r in rs {
                        if let Value::Array(pair) = r
                            && let [Value::Integer(a), Value::Integer(b)] = pair.as_slice()
                        {
                            ranges.push((*a as u64, *b as u64));
                        }
                    }
                }
                have.insert(author, ranges);
            }
        }
        let covered = |e: &Signed| {
            have.get(&e.author.to_bytes())
                .is_some_and(|rs| rs.iter().any(|(a, b)| (*a..=*b).contains(&e.seq)))
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for e in &self.history {
            if low.as_ref().is_some_and(|l| e.key() <= *l) || covered(e) {
                continue;
            }
            if out.len() == PAGE || bytes + e.bytes.len() > PAGE_BYTES {
                more = true;
                break;
            }
            bytes += e.bytes.len();
            out.push(Value::Bytes(e.bytes.clone()));
        }
        Ok((out, more))
    }
}

fn build_swarm(key: Keypair) -> libp2p::Swarm<LiarBehaviour> {
    let rr = || {
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(256)
    };
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("a tcp transport")
        .with_behaviour(|key| LiarBehaviour {
            // Section 3: anonymous messages, the SHA-256 of the data their id.
            gossipsub: gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Anonymous,
                gossipsub::ConfigBuilder::default()
                    .max_transmit_size(64 * 1024)
                    .validation_mode(gossipsub::ValidationMode::Anonymous)
                    .heartbeat_initial_delay(Duration::from_millis(100))
                    .message_id_fn(|m: &gossipsub::Message| {
                        use sha2::Digest;
                        gossipsub::MessageId::new(&sha2::Sha256::digest(&m.data))
                    })
                    .build()
                    .expect("a gossipsub config"),
            )
            .expect("gossipsub"),
            hello: request_response::Behaviour::with_codec(
                RawCodec { max: 256 * 1024 },
                [(HELLO, ProtocolSupport::Full)],
                rr(),
            ),
            sync: request_response::Behaviour::with_codec(
                RawCodec { max: 1024 * 1024 },
                [(SYNC, ProtocolSupport::Full)],
                rr(),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new("/chitty-chat/id/1".into(), key.public())
                    .with_agent_version("liar/1".into()),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
        })
        .expect("behaviours")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build()
}

pub(super) async fn run(
    key: Keypair,
    listen: bool,
    raw: bool,
    mut cmds: mpsc::Receiver<Cmd>,
    seen: std_mpsc::SyncSender<Seen>,
) {
    let mut swarm = build_swarm(key);
    let mut st = State {
        hello: HelloMsg::new(0, vec![]),
        history: Vec::new(),
        clock: 0,
        seen,
        lost_reports: 0,
        tags: HashMap::new(),
        raw,
    };
    let topic = gossipsub::IdentTopic::new(TOPIC);
    if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&topic) {
        panic!("the liar cannot subscribe: {e}");
    }
    if listen {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr");
        if let Err(e) = swarm.listen_on(addr) {
            panic!("the liar cannot listen: {e}");
        }
    }
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    Cmd::Dial(a) => {
                        if let Err(e) = swarm.dial(a) {
                            st.report(Seen::DialFailed { peer: None, error: e.to_string() });
                        }
                    }
                    Cmd::SetHello(h) => st.hello = h,
                    Cmd::Hello { to, hello, tag } => {
                        let id = swarm.behaviour_mut().hello.send_request(&to, hello.encode());
                        st.tags.insert(id, tag);
                    }
                    Cmd::Publish(data) => {
                        // With nobody subscribed any more (cut off), gossipsub refuses: that is
                        // what the tests look at through the connections, not here.
                        let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data);
                    }
                    Cmd::Serve(mut events) => {
                        events.sort_by_key(Signed::key);
                        st.history = events;
                    }
                    Cmd::Sync { to, request } => {
                        swarm.behaviour_mut().sync.send_request(&to, request);
                    }
                    Cmd::Subscribe(t) => {
                        let _ = swarm
                            .behaviour_mut()
                            .gossipsub
                            .subscribe(&gossipsub::IdentTopic::new(t));
                    }
                    Cmd::Disconnect(p) => {
                        let _ = swarm.disconnect_peer_id(p);
                    }
                    Cmd::Clock(tx) => {
                        let _ = tx.try_send(st.clock);
                    }
                }
            }
            event = swarm.select_next_some() => handle(&mut swarm, &mut st, event),
        }
    }
}

fn handle(
    swarm: &mut libp2p::Swarm<LiarBehaviour>,
    st: &mut State,
    event: SwarmEvent<LiarBehaviourEvent>,
) {
    use request_response::{Event as Rr, Message as M};
    match event {
        SwarmEvent::NewListenAddr { address, .. } => st.report(Seen::Listening(address)),
        SwarmEvent::ConnectionEstablished {
            peer_id,
            endpoint,
            num_established,
            ..
        } => {
            st.report(Seen::Connected {
                peer: peer_id,
                dialer: endpoint.is_dialer(),
                at: Instant::now(),
            });
            // Section 4: a hello on every new connection (the first to a peer).
            if num_established.get() == 1 {
                let h = st.hello.encode();
                swarm.behaviour_mut().hello.send_request(&peer_id, h);
            }
        }
        SwarmEvent::ConnectionClosed {
            peer_id,
            num_established,
            ..
        } => st.report(Seen::Closed {
            peer: peer_id,
            remaining: num_established,
            at: Instant::now(),
        }),
        SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => st.report(Seen::DialFailed {
            peer: peer_id,
            error: error.to_string(),
        }),
        SwarmEvent::Behaviour(LiarBehaviourEvent::Gossipsub(e)) => match e {
            gossipsub::Event::Subscribed { peer_id, topic, .. } => st.report(Seen::Subscribed {
                peer: peer_id,
                topic: topic.into_string(),
            }),
            gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            } => match read_event(&message.data) {
                _ if st.raw => st.report(Seen::Raw {
                    topic: message.topic.to_string(),
                    data: message.data.clone(),
                }),
                Ok(event) => {
                    st.merge(event.lamport);
                    st.report(Seen::Gossip {
                        via: propagation_source,
                        event,
                    })
                }
                Err(error) => st.report(Seen::Garbage {
                    via: propagation_source,
                    error,
                }),
            },
            _ => {}
        },
        SwarmEvent::Behaviour(LiarBehaviourEvent::Hello(e)) => match e {
            Rr::Message { peer, message, .. } => {
                let (bytes, response, tag) = match message {
                    M::Request {
                        request, channel, ..
                    } => {
                        let answer = st.hello.encode();
                        let _ = swarm.behaviour_mut().hello.send_response(channel, answer);
                        (request, false, None)
                    }
                    M::Response {
                        response,
                        request_id,
                    } => (response, true, st.tags.remove(&request_id)),
                };
                match HelloMsg::decode(&bytes) {
                    Ok(hello) => {
                        if hello.topic == st.hello.topic {
                            st.merge(hello.lamport);
                        }
                        st.report(Seen::Hello {
                            peer,
                            hello,
                            response,
                            tag,
                        })
                    }
                    Err(error) => st.report(Seen::BadHello { peer, error, tag }),
                }
            }
            Rr::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                let tag = st.tags.remove(&request_id);
                st.report(Seen::Unanswered {
                    peer,
                    protocol: "hello",
                    error: error.to_string(),
                    tag,
                })
            }
            _ => {}
        },
        SwarmEvent::Behaviour(LiarBehaviourEvent::Sync(e)) => match e {
            Rr::Message { peer, message, .. } => match message {
                M::Request {
                    request, channel, ..
                } => {
                    let (events, more) = match st.page(&request) {
                        Ok(page) => page,
                        Err(error) => {
                            st.report(Seen::BadRequest { peer, error });
                            (vec![], false)
                        }
                    };
                    let n = events.len();
                    let answer = ordered(&C::M(vec![
                        ("v", C::V(uint(2))),
                        ("events", C::A(events.into_iter().map(C::V).collect())),
                        ("more", C::V(Value::Bool(more))),
                    ]));
                    let _ = swarm.behaviour_mut().sync.send_response(channel, answer);
                    st.report(Seen::SyncAsked {
                        peer,
                        events: n,
                        more,
                    });
                }
                M::Response { response, .. } => {
                    let v: Result<Value, _> = serde_cbor::from_slice(&response);
                    let (events, more, max_lamport) = match &v {
                        Ok(v) => {
                            let list = match get(v, "events") {
                                Some(Value::Array(l)) => l.clone(),
                                _ => vec![],
                            };
                            let max = list
                                .iter()
                                .filter_map(|e| match e {
                                    Value::Bytes(b) => read_event(b).ok().map(|r| r.lamport),
                                    _ => None,
                                })
                                .max()
                                .unwrap_or(0);
                            let more = matches!(get(v, "more"), Some(Value::Bool(true)));
                            (list.len(), more, max)
                        }
                        Err(_) => (0, false, 0),
                    };
                    st.report(Seen::SyncPage {
                        peer,
                        events,
                        more,
                        max_lamport,
                    })
                }
            },
            Rr::OutboundFailure { peer, error, .. } => st.report(Seen::Unanswered {
                peer,
                protocol: "sync",
                error: error.to_string(),
                tag: None,
            }),
            _ => {}
        },
        _ => {}
    }
}
