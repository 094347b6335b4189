//! Stopping gracefully: the signals that ask for it, and letting go of the database pool.

use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::rt::signal::unix::{signal, Signal, SignalKind};
use actix_web::web;
use futures_util::future::{select, Either};
use tokio::sync::Notify;

use super::AppState;
use crate::routes::web::middleware::InFlight;

/// How long `close` waits for the stopped workers to let go of the state.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Drops the state once nothing else holds it, so that the pool closes its connections (SQLite
/// checkpoints its write-ahead log; PostgreSQL sees a clean goodbye). A stopped worker lets go
/// of its copy on its own thread, a moment after it reports stopping.
pub(super) async fn close(state: web::Data<AppState>) {
    let mut state = state.into_inner();
    let give_up = Instant::now() + CLOSE_WAIT;
    loop {
        match Arc::try_unwrap(state) {
            Ok(last) => {
                drop(last);
                return;
            }
            Err(shared) if Instant::now() < give_up => state = shared,
            Err(_) => {
                log::warn!("the database pool is still in use; its connections close at exit");
                return;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SIGTERM and SIGINT: both stop the server gracefully (actix would end the requests in flight
/// at SIGINT). A [`Stopper`] asks the same without a signal.
pub(super) struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
    requested: Arc<Notify>,
}

/// Asks a running application to stop, as a signal would.
#[derive(Clone)]
pub struct Stopper(Arc<Notify>);

impl Stopper {
    /// The first call stops the application gracefully; a second ends requests in flight.
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

impl StopSignals {
    pub(super) fn watch() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            requested: Arc::new(Notify::new()),
        })
    }

    pub(super) fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.requested))
    }

    /// Waits for the next signal (or request to stop); returns its name.
    async fn next(&mut self) -> &'static str {
        let terminate = pin!(self.terminate.recv());
        let interrupt = pin!(self.interrupt.recv());
        let requested = pin!(self.requested.notified());
        match select(select(terminate, interrupt), requested).await {
            Either::Left((Either::Left(_), _)) => "SIGTERM",
            Either::Left((Either::Right(_), _)) => "SIGINT",
            Either::Right(_) => "a request to stop",
        }
    }
}

/// Waits for a signal and stops the server gracefully; returns (so that the server is dropped,
/// ending the requests still in flight) when `timeout` is up or a second signal comes before the
/// server has stopped, first telling `in_flight` that what it drops from then on was cut.
pub(super) async fn stop_on_signals(
    server: ServerHandle,
    signals: &mut StopSignals,
    timeout: Duration,
    signalled: &OnceLock<Instant>,
    in_flight: &InFlight,
) {
    let first = signals.next().await;
    let _ = signalled.set(Instant::now());
    log::info!(
        "{first} received: stopping; requests in flight have {}s to finish",
        timeout.as_secs()
    );
    let stopped = pin!(server.stop(true));
    let deadline = pin!(actix_web::rt::time::sleep(timeout));
    let second = pin!(signals.next());
    match select(stopped, select(deadline, second)).await {
        Either::Left(((), _)) => std::future::pending().await,
        Either::Right((Either::Left(((), _)), _)) => {
            in_flight.deadline_passed();
            log::warn!(
                "SHUTDOWN_TIMEOUT ({}s) is up: ending the requests still in flight",
                timeout.as_secs()
            );
        }
        Either::Right((Either::Right((second, _)), _)) => {
            in_flight.deadline_passed();
            log::warn!("{second} received again: ending the requests in flight now");
        }
    }
}
