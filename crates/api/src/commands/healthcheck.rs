//! `saas-api healthcheck`: exit 0 when the local server answers 200 on
//! `/health/ready`. The container image has no shell or curl, so Docker's
//! `HEALTHCHECK` runs this instead.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Asks `127.0.0.1:<port>/health/ready`; `Ok(())` on 200.
///
/// # Errors
/// When the server cannot be reached in time or answers anything else.
pub fn check(port: u16) -> anyhow::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head)?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        anyhow::bail!("not ready: {}", status_line.lines().next().unwrap_or_default())
    }
}
