//! How many connections are served at once. Beyond the cap (`MAX_CONNECTIONS`), a new
//! connection is answered 503 with `Retry-After` the moment it is accepted, and closed: overload
//! gets a quick answer instead of a wait, and a refused connection holds its open file for an
//! instant only, so a flood of idle connections cannot use up the open-files limit.

use std::any::Any;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;

use super::errors::{ApiError, BUSY_RETRY_AFTER};

/// What a refused connection is told, before it has said anything: what a busy [`ApiError::Unavailable`]
/// answers, written straight to the socket.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json; charset=utf-8\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
x-content-type-options: nosniff\r\n\
connection: close\r\n\
content-length: 32\r\n\
\r\n\
{\"detail\":\"SERVICE_UNAVAILABLE\"}";

/// How often the log may say that connections are being refused.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The connections open now, against the cap; shared by every worker.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    open: Arc<AtomicUsize>,
    cap: usize,
    refusals: Arc<Refusals>,
}

/// Connections refused since the log last said so, and when that was.
#[derive(Debug)]
struct Refusals {
    since_report: AtomicU64,
    started: Instant,
    /// Milliseconds after `started` of the last report, plus one (0: never reported).
    reported_at: AtomicU64,
}

/// In a connection's data: counts it out when it closes.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// In a connection's data: it came beyond the cap.
struct Refused;

impl ConnectionCap {
    pub fn new(cap: usize) -> ConnectionCap {
        ConnectionCap {
            open: Arc::new(AtomicUsize::new(0)),
            cap,
            refusals: Arc::new(Refusals {
                since_report: AtomicU64::new(0),
                started: Instant::now(),
                reported_at: AtomicU64::new(0),
            }),
        }
    }

    /// Connections open now, refused ones included until they are closed.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The server's `on_connect` hook: counts the connection in and, beyond the cap, answers
    /// it 503 and shuts it down at once.
    pub fn admit(&self, io: &dyn Any, data: &mut Extensions) {
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        data.insert(Counted(Arc::clone(&self.open)));
        if open <= self.cap {
            return;
        }
        data.insert(Refused);
        self.report_refusal();
        if let Some(stream) = io.downcast_ref::<TcpStream>() {
            let fd = stream.as_raw_fd();
            // Straight to the socket: the runtime has not yet seen it writable, so its own
            // writes would wait. A fresh socket's send buffer has room for the answer; if not,
            // the shutdown alone still refuses.
            // SAFETY: send(2) reads `REFUSAL`, a static buffer of the length given, and
            // shutdown(2) acts on the descriptor of a socket this stream owns and keeps open.
            // Neither blocks (MSG_DONTWAIT) nor raises SIGPIPE (MSG_NOSIGNAL).
            unsafe {
                libc::send(
                    fd,
                    REFUSAL.as_ptr().cast(),
                    REFUSAL.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
                // Its reads now end, so the connection closes at once.
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    /// Counts a refusal, and says so in the log at most every [`REPORT_EVERY`].
    fn report_refusal(&self) {
        let refusals = &self.refusals;
        refusals.since_report.fetch_add(1, Ordering::SeqCst);
        let now = refusals.started.elapsed().as_millis() as u64 + 1;
        let last = refusals.reported_at.load(Ordering::SeqCst);
        let due = last == 0 || now - last >= REPORT_EVERY.as_millis() as u64;
        if due
            && refusals
                .reported_at
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let refused = refusals.since_report.swap(0, Ordering::SeqCst);
            log::warn!(
                "{refused} connection(s) refused with 503: MAX_CONNECTIONS ({}) are open",
                self.cap
            );
        }
    }
}

/// A request that arrived on a refused connection before the refusal closed it is answered
/// 503 too, without being handled.
pub async fn refuse_beyond_cap(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> actix_web::Result<ServiceResponse<EitherBody<impl MessageBody>>> {
    if req.conn_data::<Refused>().is_some() {
        let mut response = ApiError::Unavailable {
            retry_after: BUSY_RETRY_AFTER,
        }
        .error_response();
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["detail"], "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn connections_beyond_the_cap_are_marked_refused_and_all_are_counted_out() {
        let cap = ConnectionCap::new(2);
        let mut connections: Vec<Extensions> = (0..3)
            .map(|_| {
                let mut data = Extensions::new();
                cap.admit(&(), &mut data);
                data
            })
            .collect();
        assert_eq!(cap.open(), 3);
        let refused: Vec<bool> = connections
            .iter()
            .map(|d| d.contains::<Refused>())
            .collect();
        assert_eq!(refused, [false, false, true]);
        connections.clear();
        assert_eq!(cap.open(), 0);
        let mut data = Extensions::new();
        cap.admit(&(), &mut data);
        assert!(!data.contains::<Refused>(), "room again");
    }
}
