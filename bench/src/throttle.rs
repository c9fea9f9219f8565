//! A WAN-like hop for the benchmark: a loopback TCP proxy that limits each connection's
//! download throughput (token bucket per connection) and delays every request by a fixed
//! latency, so that one TCP stream is far slower than the machine — as over a long link.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Result;

/// Listens on 127.0.0.1 (an ephemeral port, printed on stdout) and forwards to `upstream`,
/// `rate` bytes per second per connection towards the client, `latency` before each request.
pub fn run(upstream: &str, rate: u64, latency: Duration) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        let up = upstream.to_string();
        std::thread::spawn(move || {
            if let Ok(server) = TcpStream::connect(&up) {
                let _ = relay(client, server, rate, latency);
            }
        });
    }
    Ok(())
}

fn relay(client: TcpStream, server: TcpStream, rate: u64, latency: Duration) -> Result<()> {
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || requests(c2, s2, latency));
    let _ = responses(server, client, rate);
    let _ = up.join();
    Ok(())
}

/// Client to server: each burst of request bytes waits `latency` first.
fn requests(mut from: TcpStream, mut to: TcpStream, latency: Duration) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        std::thread::sleep(latency);
        to.write_all(&buf[..n])?;
    }
}

/// Server to client at `rate` bytes per second at most.
fn responses(mut from: TcpStream, mut to: TcpStream, rate: u64) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    let mut since = Instant::now();
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        to.write_all(&buf[..n])?;
        sent += n as u64;
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        let elapsed = since.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        // An idle connection (keep-alive between requests) does not bank credit.
        if elapsed > due + Duration::from_secs(1) {
            (sent, since) = (0, Instant::now());
        }
    }
}
