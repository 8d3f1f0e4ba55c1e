//! The bare madsim baseline for `ksim bench`.
//!
//! [`baseline_pingpong`] measures what plain madsim TCP costs per message on this machine, in
//! the same process as our own runs, so `ksim bench` can report our overhead against it.
//! Wall-clock reads (`std::time::Instant`) happen only outside `block_on`, where madsim does not
//! intercept the clock; this code is outside the simulation's determinism on purpose.

use madsim::net::{TcpListener, TcpStream};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Result of one baseline run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineResult {
    /// Frames carried, each counted one way (a round trip is two messages).
    pub messages: u64,
    /// Simulated time the ping-pong took, in milliseconds.
    pub simulated_ms: f64,
    /// Wall time of the whole simulation (runtime build, node setup, ping-pong), in microseconds.
    pub wall_us: u64,
    /// `wall_us / messages`.
    pub wall_us_per_message: f64,
    /// Simulated time per wall time (how much faster than real time).
    pub simulated_per_wall_ratio: f64,
}

const PORT: u16 = 9000;
const PAYLOAD: usize = 64;

async fn write_frame(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    s.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    s.write_all(payload).await?;
    s.flush().await // madsim sends bytes only on flush
}

async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    buf.resize(u32::from_be_bytes(len) as usize, 0);
    s.read_exact(buf).await?;
    Ok(())
}

async fn echo_server(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        madsim::task::spawn(async move {
            let mut buf = Vec::new();
            while read_frame(&mut s, &mut buf).await.is_ok() {
                if write_frame(&mut s, &buf).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(_) => madsim::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

/// Client on node 3: `messages` one-way frames, ping-ponged alternately with nodes 1 and 2.
/// Returns (messages carried, simulated ms of the ping-pong, excluding connection setup).
async fn client(messages: u64, servers: [SocketAddr; 2]) -> (u64, f64) {
    let mut streams = [connect(servers[0]).await, connect(servers[1]).await];
    let start = madsim::time::Instant::now();
    let payload: Vec<u8> = (0..PAYLOAD as u8).collect();
    let mut buf = Vec::with_capacity(PAYLOAD);
    let mut carried = 0;
    let mut i = 0;
    while carried + 2 <= messages {
        let s = &mut streams[i % 2];
        write_frame(s, &payload).await.expect("ping");
        read_frame(s, &mut buf).await.expect("pong");
        assert_eq!(buf, payload);
        carried += 2;
        i += 1;
    }
    if carried < messages {
        // An odd count: one last frame one way (its echo is not awaited).
        write_frame(&mut streams[i % 2], &payload)
            .await
            .expect("ping");
        carried += 1;
    }
    (carried, start.elapsed().as_secs_f64() * 1000.0)
}

/// Bare madsim TCP ping-pong between 3 nodes (10.0.0.1-3): nodes 1 and 2 echo length-prefixed
/// frames, node 3 sends `messages` frames (~64 bytes) alternately to them over two persistent
/// streams. Runs on a fresh OS thread with its own runtime.
pub fn baseline_pingpong(seed: u64, messages: u64) -> BaselineResult {
    std::thread::Builder::new()
        .name(format!("ksim-bench-{seed}"))
        .spawn(move || {
            let wall = std::time::Instant::now();
            let rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
            let servers = [SocketAddr::new(ip(1), PORT), SocketAddr::new(ip(2), PORT)];
            for (n, addr) in [(1u8, servers[0]), (2, servers[1])] {
                let node = rt.create_node().name(format!("echo-{n}")).ip(ip(n)).build();
                node.spawn(echo_server(addr));
            }
            let client_node = rt.create_node().name("client").ip(ip(3)).build();
            let (carried, simulated_ms) = rt.block_on(async move {
                client_node
                    .spawn(client(messages, servers))
                    .await
                    .expect("client task")
            });
            drop(rt);
            let wall_us = (wall.elapsed().as_micros() as u64).max(1);
            BaselineResult {
                messages: carried,
                simulated_ms,
                wall_us,
                wall_us_per_message: wall_us as f64 / carried.max(1) as f64,
                simulated_per_wall_ratio: simulated_ms * 1000.0 / wall_us as f64,
            }
        })
        .expect("spawn bench thread")
        .join()
        .expect("bench thread panicked")
}

/// Peak resident set size of this process in KiB (`VmHWM` in /proc/self/status), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_baseline_pingpong_runs() {
        let r = baseline_pingpong(1, 2000);
        eprintln!("{r:?}");
        assert_eq!(r.messages, 2000);
        assert!(r.simulated_ms > 0.0, "{r:?}");
        assert!(r.wall_us > 0 && r.wall_us_per_message > 0.0 && r.simulated_per_wall_ratio > 0.0);
        let odd = baseline_pingpong(2, 3);
        assert_eq!(odd.messages, 3);
    }

    #[test]
    fn bench_baseline_simulated_time_is_deterministic() {
        let a = baseline_pingpong(7, 200);
        let b = baseline_pingpong(7, 200);
        assert_eq!(a.simulated_ms, b.simulated_ms);
    }

    #[test]
    fn bench_peak_rss_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
