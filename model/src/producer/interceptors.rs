//! Kafka's producer interceptors (`ProducerInterceptor.java`, and `ProducerInterceptors.java`
//! that runs them): the hooks that see every record before it is serialized (`onSend`) and
//! every outcome (`onAcknowledgement`), the interceptors `interceptor.classes` can name, and
//! the catching and logging of an interceptor's exception or panic (step 1 and the end of
//! step 7 of the pipeline in [`super`]).

use super::{ProducerClient, ProducerRecord, ProducerTimer, RecordMetadata};
use crate::config::InterceptorClass;
use crate::effects::Effects;
use crate::event::Event;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Kafka's `ProducerInterceptor`: sees every record before it is serialized and every outcome.
/// An error (Kafka: an exception) or a panic in either hook is caught and logged as
/// [`Event::InterceptorFailed`], never propagated.
pub trait ProducerInterceptor: Send {
    /// A name for reports.
    fn name(&self) -> String {
        "interceptor".into()
    }
    /// Called by `send` first; returns the record to send (possibly modified), or the message
    /// of the exception it throws (the record then goes on as the previous interceptor left
    /// it).
    fn on_send(&mut self, record: ProducerRecord) -> Result<ProducerRecord, String>;
    /// Called when the record is acknowledged (`error` is `None`) or fails; `Err` is the
    /// message of the exception it throws.
    fn on_acknowledgement(
        &mut self,
        metadata: &RecordMetadata,
        error: Option<&str>,
    ) -> Result<(), String>;
}

/// `ksim.interceptors.TracingHeader` ([`InterceptorClass::TracingHeader`]): stamps each record
/// with a header `ksim-trace` = `CLIENT/N`, the client and the record's sequence number.
#[derive(Debug, Clone)]
pub struct TracingHeaderInterceptor {
    client: String,
    sent: u64,
}

impl ProducerInterceptor for TracingHeaderInterceptor {
    fn name(&self) -> String {
        InterceptorClass::TracingHeader.class_name().into()
    }
    fn on_send(&mut self, mut record: ProducerRecord) -> Result<ProducerRecord, String> {
        self.sent += 1;
        let trace = format!("{}/{}", self.client, self.sent);
        record
            .headers
            .push(("ksim-trace".into(), Some(trace.into_bytes())));
        Ok(record)
    }
    fn on_acknowledgement(&mut self, _m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        Ok(())
    }
}

/// `ksim.interceptors.FailingOnSend` and `ksim.interceptors.FailingOnAcknowledgement`
/// ([`InterceptorClass`]): the named hook throws every time.
#[derive(Debug, Clone, Copy)]
pub struct FailingInterceptor(pub InterceptorClass);

impl ProducerInterceptor for FailingInterceptor {
    fn name(&self) -> String {
        self.0.class_name().into()
    }
    fn on_send(&mut self, record: ProducerRecord) -> Result<ProducerRecord, String> {
        if self.0 == InterceptorClass::FailingOnSend {
            return Err("java.lang.IllegalStateException: onSend always fails".into());
        }
        Ok(record)
    }
    fn on_acknowledgement(&mut self, _m: &RecordMetadata, _e: Option<&str>) -> Result<(), String> {
        if self.0 == InterceptorClass::FailingOnAcknowledgement {
            return Err("java.lang.IllegalStateException: onAcknowledgement always fails".into());
        }
        Ok(())
    }
}

/// The interceptor of an `interceptor.classes` entry, for the producer named `client`.
pub fn builtin_interceptor(class: InterceptorClass, client: &str) -> Box<dyn ProducerInterceptor> {
    match class {
        InterceptorClass::TracingHeader => Box::new(TracingHeaderInterceptor {
            client: client.to_string(),
            sent: 0,
        }),
        failing => Box::new(FailingInterceptor(failing)),
    }
}

impl ProducerClient {
    /// Runs every interceptor's `on_send`, catching panics (the previous record is kept).
    pub(super) fn intercept_send(
        &mut self,
        mut record: ProducerRecord,
        out: &mut Effects<ProducerTimer>,
    ) -> ProducerRecord {
        for i in 0..self.interceptors.len() {
            let before = record.clone();
            let interceptor = &mut self.interceptors[i];
            match catch_unwind(AssertUnwindSafe(|| interceptor.on_send(record))) {
                Ok(Ok(r)) => record = r,
                Ok(Err(error)) => {
                    self.interceptor_failed(i, "onSend", error, out);
                    record = before;
                }
                Err(panic) => {
                    self.interceptor_failed(i, "onSend", panic_text(&panic), out);
                    record = before;
                }
            }
        }
        record
    }

    pub(super) fn intercept_ack(
        &mut self,
        metadata: &RecordMetadata,
        error: Option<&str>,
        out: &mut Effects<ProducerTimer>,
    ) {
        for i in 0..self.interceptors.len() {
            let interceptor = &mut self.interceptors[i];
            let failure = match catch_unwind(AssertUnwindSafe(|| {
                interceptor.on_acknowledgement(metadata, error)
            })) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(panic) => Some(panic_text(&panic)),
            };
            if let Some(e) = failure {
                self.interceptor_failed(i, "onAcknowledgement", e, out);
            }
        }
    }

    /// Kafka's `ProducerInterceptors` logs an interceptor's exception and goes on. The event
    /// is recorded for the 1st, 10th, 100th, ... failure of each interceptor and hook, with
    /// the count so far, so that an interceptor failing on every record is visible without
    /// one event per record.
    fn interceptor_failed(
        &mut self,
        index: usize,
        method: &'static str,
        error: String,
        out: &mut Effects<ProducerTimer>,
    ) {
        let interceptor = self.interceptors[index].name();
        let failures = self
            .interceptor_failures
            .entry((interceptor.clone(), method))
            .or_insert(0);
        *failures += 1;
        let n = *failures;
        let mut power = 1;
        while power < n {
            power *= 10;
        }
        if power == n {
            out.event(Event::InterceptorFailed {
                interceptor,
                method: method.into(),
                error,
                failures: n,
            });
        }
    }
}

/// The text of a caught panic payload.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}
