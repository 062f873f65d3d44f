//! The HTTP side of delivery: what gateways post back to tidings' delivery endpoint — Kannel's
//! delivery reports and the subscribers' messages its `get-url` hands on ([`super::kannel`]),
//! the call centre's results ([`super::calls`]) — goes to the dispatcher as [`Incoming`] items.
//! A callback is answered 200 only once what it carried is on disk (the ledger synced): a
//! gateway that gets no answer because tidings died sends it again.

use super::gateway::{Inbound, Incoming};
use super::{calls, kannel};
use crate::http::{Request, Response};
use tokio::sync::mpsc;

/// The handler of the delivery endpoint; what it takes goes to `tx`.
pub fn callback_handler(tx: mpsc::UnboundedSender<Incoming>) -> impl crate::http::Handler {
    Callbacks { tx }
}

struct Callbacks {
    tx: mpsc::UnboundedSender<Incoming>,
}

impl crate::http::Handler for Callbacks {
    fn handle(&self, req: Request) -> crate::http::Reply {
        let now = chrono::Utc::now().timestamp_millis();
        let parsed: Result<Option<Inbound>, Response> = match req.path.as_str() {
            kannel::DLR_PATH => kannel::report(&req, now).map(|r| r.map(Inbound::from)),
            kannel::MO_PATH => kannel::reply(&req, now).map(|r| Some(r.into())),
            calls::RESULT_PATH if req.method == hyper::Method::POST => calls::report(&req, now).map(|r| Some(r.into())),
            calls::RESULT_PATH => Err(Response::error(405, "POST a JSON call result")),
            "/healthz" => Ok(None),
            _ => Err(Response::error(404, "no such endpoint")),
        };
        let item = match parsed {
            Err(resp) => return Box::pin(std::future::ready(resp)),
            Ok(None) => return Box::pin(std::future::ready(Response::text(200, "ok\n"))),
            Ok(Some(item)) => item,
        };
        // Kannel sends the body of its get-url's answer to the subscriber as an SMS (unless the
        // sms-service says `max-messages = 0`): a reply is answered with nothing to send.
        let ok = if matches!(item, Inbound::Reply(_)) { "" } else { "ok\n" };
        let (incoming, safe) = Incoming::with_ack(item);
        let sent = self.tx.send(incoming).is_ok();
        Box::pin(async move {
            match sent && safe.await.is_ok() {
                true => Response::text(200, ok),
                false => Response::error(503, "shutting down; send it again"),
            }
        })
    }
}
