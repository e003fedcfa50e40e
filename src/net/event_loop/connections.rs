//! The swarm's events about connections, listeners and discovery (mDNS, identify, a hub's
//! rendezvous), routed to the dialer, the hub client, liveness and the room; and the dials the
//! dialer asks for.

use super::*;

impl EventLoop {
    pub(super) async fn handle_swarm_event(
        &mut self,
        event: SwarmEvent<ChatBehaviourEvent>,
    ) -> Result<(), NetError> {
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                if self.hubs.relayed_address(listener_id, Instant::now()) {
                    // A relayed address on a hub: others who cannot reach us directly use it.
                    info!(%address, "relayed address");
                    self.swarm.add_external_address(address);
                    return Ok(());
                }
                info!(%address, "listening");
                self.listening.push(address);
                if !self.started {
                    self.ready_pending = true;
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                reason,
                addresses,
                listener_id,
            } => {
                if !self.tcp_listeners.contains(&listener_id) {
                    // A relayed listener: its hub went away or refused; its addresses are no
                    // longer ours to announce. The hub's timer asks again if it is still there.
                    debug!(?addresses, ?reason, "relayed listener closed");
                    self.hubs.circuit_closed(listener_id, Instant::now());
                    for a in addresses {
                        self.swarm.remove_external_address(&a);
                    }
                    return Ok(());
                }
                warn!(?addresses, ?reason, "listener closed");
                self.tcp_listeners.remove(&listener_id);
                if self.tcp_listeners.is_empty() && self.fatal.is_none() {
                    let why = match reason {
                        Err(e) => e.to_string(),
                        Ok(()) => "the listener closed".to_owned(),
                    };
                    // Say goodbye over the connections we still have, then stop with the error.
                    self.fatal = Some(NetError::ListenersClosed(why));
                    self.quit();
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                info!(peer = %peer_id, addr = %endpoint.get_remote_address(), num_established, "connection established");
                if self.is_banned(&peer_id) {
                    debug!(peer = %peer_id, "refusing a cut-off peer");
                    self.swarm.close_connection(connection_id);
                    return Ok(());
                }
                // One connection per peer: both sides close the same duplicate, a moment later.
                let close_at = Instant::now() + DUPLICATE_GRACE;
                for dup in self
                    .one_link
                    .opened(peer_id, connection_id, endpoint.is_dialer())
                {
                    debug!(peer = %peer_id, connection = ?dup, "a second connection to a peer; closing it soon");
                    if self.duplicates.len() < super::super::one_link::LINKS_CAP {
                        self.duplicates.push((dup, close_at));
                    }
                }
                let reports = self.dialer.connected(peer_id, connection_id);
                self.reports.extend(reports);
                self.alive.opened(connection_id, peer_id, Instant::now());
                for j in &mut self.rooms {
                    j.room.peer_back(&peer_id);
                }
                if num_established.get() == 1 {
                    self.links.insert(
                        peer_id,
                        Link {
                            since: Instant::now(),
                            addr: endpoint.get_remote_address().clone(),
                        },
                    );
                    for j in &mut self.rooms {
                        // No hello goes out about a room we are leaving.
                        let state = if j.leaving.is_some() || j.room.has_left() {
                            HelloState::Other
                        } else {
                            HelloState::Pending
                        };
                        j.hellos.insert(peer_id, state);
                    }
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: true,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                }
                if num_established.get() == 1 && !self.leaving() {
                    // One hello per room of ours: each tells whether the peer is in it.
                    for i in 0..self.rooms.len() {
                        if self.rooms[i].hellos.get(&peer_id) == Some(&HelloState::Pending) {
                            self.send_hello(i, peer_id);
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                endpoint,
                ..
            } => {
                self.alive.closed(connection_id);
                self.one_link.closed(&peer_id, connection_id);
                self.duplicates.retain(|d| d.0 != connection_id);
                info!(peer = %peer_id, num_established, cause = ?cause, "connection closed");
                if num_established == 0 {
                    let now = Instant::now();
                    self.links.remove(&peer_id);
                    for j in &mut self.rooms {
                        j.hellos.remove(&peer_id);
                    }
                    self.paging.disconnected(&peer_id);
                    self.hubs.disconnected(&peer_id);
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: false,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                    if self.stall.defer_if_recovering(peer_id, now) {
                        debug!(peer = %peer_id, "closed while we recover from a stall; looked at again after it");
                        for j in &mut self.rooms {
                            j.room.peer_unreachable(&peer_id);
                        }
                    } else if !self.leaving() {
                        // Each room decides: a present participant gone without a leave is lost
                        // (a leaver we hung up on is no longer present).
                        for j in self.rooms.iter_mut().filter(|j| j.leaving.is_none()) {
                            j.room.peer_gone(peer_id, now, wall_now());
                        }
                    }
                    self.flush_outboxes().await?;
                    self.dialer.disconnected(peer_id, now);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                let report = self.dialer.failed(connection_id, &error, Instant::now());
                self.reports.extend(report);
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Gossipsub(ev)) => {
                self.handle_gossip(ev).await?
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Mdns(ev)) => self.handle_mdns(ev),
            SwarmEvent::Behaviour(ChatBehaviourEvent::Sync(ev)) => {
                self.handle_sync(ev).await?;
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::RendezvousClient(ev)) => {
                self.handle_rendezvous(ev);
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Ping(ev)) => {
                let now = Instant::now();
                if let Some(peer) =
                    crate::net::handle_ping(&mut self.swarm, &mut self.alive, ev, now)
                {
                    for j in &mut self.rooms {
                        j.room.heard_from(peer, now);
                    }
                }
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Hello(ev)) => {
                self.handle_hello(ev).await?;
                if self.started {
                    self.maybe_end_waits(Instant::now());
                }
                self.flush_outboxes().await?;
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                self.dialer.met(peer_id, info.listen_addrs);
            }
            other => debug!(event = ?other, "swarm event"),
        }
        Ok(())
    }

    /// Hands dials to the swarm and tells the dialer what became of them.
    pub(super) fn start_dials(&mut self, dials: Vec<Dial>, now: Instant) {
        for dial in dials {
            match dial {
                Dial::Resolve {
                    index, host, port, ..
                } => {
                    // As every program on the machine resolves names (hosts file, DNS, mDNS
                    // names where the system has them), on a thread of its own: it may block.
                    let tx = self.resolutions.0.clone();
                    tokio::task::spawn_blocking(move || {
                        use std::net::ToSocketAddrs;
                        let ips = (host.as_str(), port)
                            .to_socket_addrs()
                            .ok()
                            .map(|found| found.map(|a| a.ip()).collect());
                        let _ = tx.blocking_send((index, ips));
                    });
                }
                Dial::Neighbour { peer, opts } => match self.swarm.dial(opts) {
                    Ok(()) => debug!(%peer, "dialling a neighbour"),
                    Err(e) => debug!(%peer, error = %e, "cannot dial a neighbour"),
                },
                Dial::Target { index, opts } => {
                    let id = opts.connection_id();
                    match self.swarm.dial(opts) {
                        Ok(()) => {
                            debug!(index, "dialling a --connect address");
                            self.dialer.dialing(index, id);
                        }
                        Err(e) => {
                            debug!(index, error = %e, "cannot dial a --connect address");
                            let swarm = &self.swarm;
                            let report =
                                self.dialer
                                    .dial_refused(index, &e, |p| swarm.is_connected(p), now);
                            self.reports.extend(report);
                        }
                    }
                }
            }
        }
    }

    /// Dials neighbour `peer` now (just discovered), unless connected or cut off.
    pub(super) fn dial_neighbour(&mut self, peer: PeerId, now: Instant) {
        let connected = self.swarm.is_connected(&peer);
        let banned = self.guard.is_banned(&peer, now);
        let dial = self.dialer.dial_now(peer, now, connected, banned);
        self.start_dials(dial.into_iter().collect(), now);
    }

    pub(super) fn handle_mdns(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                let now = Instant::now();
                let mut fresh = Vec::new();
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr.clone());
                    if !self.dialer.found_by_mdns(peer, addr) {
                        debug!(%peer, "too many neighbours; not remembered");
                        continue;
                    }
                    if !fresh.contains(&peer) {
                        fresh.push(peer);
                    }
                }
                if self.leaving() {
                    return;
                }
                for peer in fresh {
                    // The lower peer id dials; the higher waits a moment for it (one
                    // connection per peer, not two crossing dials).
                    if self.me.to_bytes() > peer.to_bytes() && !self.swarm.is_connected(&peer) {
                        self.dialer.dial_at(&peer, now + DIAL_YIELD);
                    } else {
                        self.dial_neighbour(peer, now);
                    }
                }
            }
            // Expiry only means no record was refreshed: it is not a sign that the peer is gone
            // from the chat, but there is no address left to dial it at.
            mdns::Event::Expired(gone) => {
                for (peer, addr) in gone {
                    self.dialer.expired_in_mdns(&peer, &addr, Instant::now());
                }
            }
        }
    }

    pub(super) fn handle_rendezvous(&mut self, event: rendezvous::client::Event) {
        match event {
            rendezvous::client::Event::Discovered { registrations, .. } => {
                let now = Instant::now();
                for r in registrations {
                    let peer = r.record.peer_id();
                    let Some(i) = self.room_of(&r.namespace.to_string()) else {
                        continue;
                    };
                    if peer == self.me {
                        continue;
                    }
                    if self.rooms[i].room.has_departed(&peer) {
                        // Its registration outlives it for up to a TTL.
                        continue;
                    }
                    let fresh = self
                        .dialer
                        .discovered_via_hub(peer, r.record.addresses(), now);
                    if fresh && !self.swarm.is_connected(&peer) {
                        debug!(%peer, "discovered through a hub; dialling");
                        self.dial_neighbour(peer, now);
                    }
                }
            }
            rendezvous::client::Event::Registered {
                rendezvous_node,
                ttl,
                ..
            } => {
                info!(hub = %rendezvous_node, ttl, "registered with the hub");
            }
            rendezvous::client::Event::RegisterFailed {
                rendezvous_node,
                error,
                ..
            } => {
                warn!(hub = %rendezvous_node, ?error, "registration refused");
                self.hubs
                    .register_failed(&rendezvous_node, Instant::now(), REGISTER_REFUSED_RETRY);
            }
            other => debug!(event = ?other, "rendezvous"),
        }
    }

    /// A hub of our room: reserve a relayed address on it, so that clients that cannot reach us
    /// directly can through it, and register there (see `hub_timers`).
    pub(super) fn found_hub(&mut self, hub: PeerId) {
        if self.leaving() {
            return;
        }
        let Some(addr) = self.links.get(&hub).map(|l| l.addr.clone()) else {
            return;
        };
        let Some(circuit_addr) = self.hubs.found(hub, &addr, Instant::now()) else {
            return;
        };
        let circuit = match self.swarm.listen_on(circuit_addr.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                warn!(%hub, error = %e, "cannot ask the hub for a relayed address");
                None
            }
        };
        self.hubs.reserving(&hub, circuit);
        // Our own addresses, for peers that can reach us directly (registration needs at least
        // one confirmed external address).
        for a in self.listening.clone() {
            if !crate::net::swarm::is_loopback(&a) {
                self.swarm.add_external_address(a);
            }
        }
        info!(%hub, %circuit_addr, "found a hub");
    }

    /// Registers with each hub (again before the registration expires), asks it who else is
    /// in the room, and asks again for a relayed address that was lost.
    pub(super) fn hub_timers(&mut self, now: Instant) {
        // Each room of ours is a namespace in the hubs' directories.
        let namespaces: Vec<rendezvous::Namespace> = self
            .rooms
            .iter()
            .filter(|j| j.leaving.is_none())
            .filter_map(|j| rendezvous::Namespace::new(j.room.topic().to_owned()).ok())
            .collect();
        for action in self.hubs.due(now) {
            match action {
                HubAction::Register(hub) => {
                    let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() else {
                        return;
                    };
                    for ns in &namespaces {
                        if let Err(e) = client.register(ns.clone(), hub, Some(REGISTRATION_TTL)) {
                            // No external address yet: the relayed one is on its way.
                            debug!(%hub, error = %e, "not registered yet");
                            self.hubs.register_failed(&hub, now, REGISTER_RETRY);
                            break;
                        }
                    }
                }
                HubAction::Discover(hub) => {
                    let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() else {
                        return;
                    };
                    for ns in &namespaces {
                        client.discover(Some(ns.clone()), None, Some(DISCOVER_LIMIT), hub);
                    }
                }
                HubAction::Reserve(hub, addr) => match self.swarm.listen_on(addr) {
                    Ok(id) => self.hubs.reserving(&hub, Some(id)),
                    Err(e) => debug!(%hub, error = %e, "cannot ask the hub for a relayed address"),
                },
            }
        }
    }
}
