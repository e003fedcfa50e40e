//! `chitty-lab`: a small network lab for chitty-node's tests and `chitty-bench --netns`: hosts
//! in Linux network namespaces, joined by a bridge that lives in a namespace of its own, with a
//! 224.0.0.0/4 route on each host's veth so mDNS works as on a LAN. Needs root and `ip`;
//! [`Lab::unavailable`] says why not otherwise. Everything a lab made is removed when it is
//! dropped, also when a test panics; [`Lab::namespaces`] lists it for a signal handler that
//! cannot wait for a drop, and [`remove_all_of_this_process`] also finds a lab still being built.
//!
//! Only std: it runs `ip`, `sysctl` and `kill`, and knows nothing of chat.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static LABS: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The start of the names of every namespace this process makes.
fn process_prefix() -> String {
    format!("chl{}x", std::process::id())
}

/// A name prefix of its own for each lab: the process id and a counter.
fn prefix() -> String {
    format!(
        "{}{}",
        process_prefix(),
        LABS.fetch_add(1, Ordering::SeqCst)
    )
}

/// Removes every namespace this process made, finished labs or not (for a signal handler: a
/// lab being built is not yet anyone's to drop).
pub fn remove_all_of_this_process() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let prefix = process_prefix();
    let ours: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    remove(&ours);
}

/// Hosts in network namespaces: on one bridge, or on two subnets joined by a router.
pub struct Lab {
    bridge: String,
    hosts: Vec<String>,
    /// Further namespaces to remove (the second bridge, the router).
    extra: Vec<String>,
}

impl Lab {
    /// Why labs cannot run here, if they cannot.
    pub fn unavailable() -> Option<String> {
        match Command::new("id").arg("-u").output() {
            Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
            Ok(_) => return Some("not running as root".into()),
            Err(e) => return Some(format!("cannot tell whether we are root: {e}")),
        }
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`ip netns` fails: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("no `ip` command: {e}")),
        }
    }

    /// `n` hosts, 10.77.0.1 to 10.77.0.n, on one bridge.
    pub fn bridge(n: usize) -> Result<Lab, String> {
        let prefix = prefix();
        let mut lab = Lab {
            bridge: format!("{prefix}br"),
            hosts: Vec::new(),
            extra: Vec::new(),
        };
        // On error the lab is dropped, which removes what was made so far.
        ip(&["netns", "add", &lab.bridge])?;
        ip(&[
            "-n",
            &lab.bridge,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &lab.bridge, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let host = format!("{prefix}h{i}");
            lab.add_host(&host, &lab.bridge.clone(), i, &format!("10.77.0.{i}/24"))?;
        }
        Ok(lab)
    }

    /// Two subnets, 10.81.1.0/24 (hosts 1 to `left`) and 10.81.2.0/24 (the next `right` hosts),
    /// each on its own bridge, joined by a router namespace at 10.81.1.254 and 10.81.2.254 that
    /// forwards between them if `forwarding`. No multicast crosses the router.
    pub fn routed(left: usize, right: usize, forwarding: bool) -> Result<Lab, String> {
        let prefix = prefix();
        let router = format!("{prefix}rt");
        let other = format!("{prefix}b2");
        let mut lab = Lab {
            bridge: format!("{prefix}br"),
            hosts: Vec::new(),
            extra: Vec::new(),
        };
        ip(&["netns", "add", &lab.bridge])?;
        ip(&["netns", "add", &other])?;
        lab.extra.push(other.clone());
        ip(&["netns", "add", &router])?;
        lab.extra.push(router.clone());
        ip(&["-n", &router, "link", "set", "lo", "up"])?;
        for (side, bridge) in [(1, lab.bridge.clone()), (2, other.clone())] {
            ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
            ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
            let r = format!("r{side}");
            ip(&[
                "link", "add", &r, "netns", &router, "type", "veth", "peer", "name", "up0",
                "netns", &bridge,
            ])?;
            ip(&["-n", &bridge, "link", "set", "up0", "master", "br0", "up"])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("10.81.{side}.254/24"),
                "dev",
                &r,
            ])?;
            ip(&["-n", &router, "link", "set", &r, "up"])?;
        }
        let flag = format!("net.ipv4.ip_forward={}", u8::from(forwarding));
        let ok = Command::new("ip")
            .args(["netns", "exec", &router, "sysctl", "-qw", &flag])
            .status()
            .map_err(|e| format!("sysctl: {e}"))?;
        if !ok.success() {
            return Err(format!("sysctl -w {flag} failed"));
        }
        let mut i = 0;
        for (side, count, bridge) in [(1, left, lab.bridge.clone()), (2, right, other)] {
            for k in 1..=count {
                i += 1;
                let host = format!("{prefix}h{i}");
                lab.add_host(&host, &bridge, i, &format!("10.81.{side}.{k}/24"))?;
                ip(&[
                    "-n",
                    &host,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.81.{side}.254"),
                ])?;
            }
        }
        Ok(lab)
    }

    /// The router namespace of a [`Lab::routed`] lab.
    pub fn router(&self) -> Option<&str> {
        self.extra.last().map(String::as_str)
    }

    /// The namespace of host `i` (from 1).
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i - 1]
    }

    /// Every namespace the lab made, the bridge's last.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hosts
            .iter()
            .chain(self.extra.iter())
            .cloned()
            .collect();
        v.push(self.bridge.clone());
        v
    }

    /// `ip netns exec NAMESPACE PROGRAM`: a command to run `program` in `namespace`.
    pub fn command(namespace: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", namespace, program]);
        cmd
    }

    /// Adds host namespace `host`, its `eth0` a veth to port `p{i}` on `bridge`'s `br0`, with
    /// address `cidr`, up, and a 224.0.0.0/4 route so multicast (mDNS) goes out on it.
    fn add_host(&mut self, host: &str, bridge: &str, i: usize, cidr: &str) -> Result<(), String> {
        ip(&["netns", "add", host])?;
        self.hosts.push(host.to_owned());
        let port = format!("p{i}");
        ip(&[
            "link", "add", "eth0", "netns", host, "type", "veth", "peer", "name", &port, "netns",
            bridge,
        ])?;
        ip(&["-n", bridge, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", host, "addr", "add", cidr, "dev", "eth0"])?;
        ip(&["-n", host, "link", "set", "eth0", "up"])?;
        ip(&["-n", host, "link", "set", "lo", "up"])?;
        ip(&["-n", host, "route", "add", "224.0.0.0/4", "dev", "eth0"])
    }

    /// Cuts host `i` off the bridge (`up = false`) or reconnects it.
    pub fn set_link(&self, i: usize, up: bool) -> Result<(), String> {
        let port = format!("p{i}");
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &port,
            if up { "up" } else { "down" },
        ])
    }

    /// Splits the bridge of a [`Lab::bridge`] lab in two: hosts `hosts` (from 1) go to a second bridge in the same
    /// namespace, the others stay, so each side still reaches its own members (and their mDNS)
    /// but not the other side. Their links stay up, as when a switch between two rooms fails.
    /// [`Lab::heal`] puts every host back on the first bridge.
    pub fn split(&self, hosts: &[usize]) -> Result<(), String> {
        if ip(&["-n", &self.bridge, "link", "show", "br1"]).is_err() {
            ip(&[
                "-n",
                &self.bridge,
                "link",
                "add",
                "br1",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", &self.bridge, "link", "set", "br1", "up"])?;
        }
        for i in hosts {
            ip(&[
                "-n",
                &self.bridge,
                "link",
                "set",
                &format!("p{i}"),
                "master",
                "br1",
            ])?;
        }
        Ok(())
    }

    /// Puts every host back on the first bridge, after [`Lab::split`].
    pub fn heal(&self) -> Result<(), String> {
        for i in 1..=self.hosts.len() {
            ip(&[
                "-n",
                &self.bridge,
                "link",
                "set",
                &format!("p{i}"),
                "master",
                "br0",
            ])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        remove(&self.namespaces());
    }
}

/// Kills whatever still runs in each namespace, then removes it.
pub fn remove(namespaces: &[String]) {
    for ns in namespaces {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = ip(&["netns", "del", ns]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`remove_all_of_this_process`] finds every lab by the process prefix, so each lab's
    /// prefix starts with it, and no two labs share one.
    #[test]
    fn every_lab_prefix_is_its_own_and_starts_with_the_process_prefix() {
        let (a, b) = (prefix(), prefix());
        assert_ne!(a, b);
        for p in [&a, &b] {
            assert!(p.starts_with(&process_prefix()), "{p}");
        }
    }

    /// Removing nothing, or a namespace that does not exist, neither fails nor panics.
    #[test]
    fn removing_what_is_not_there_is_harmless() {
        remove(&[]);
        remove(&["chitty-lab-test-no-such-namespace".to_owned()]);
    }
}
