//! Waiting for Lambda's asynchronous state changes: a new function goes `Pending` → `Active`
//! (or `Failed`), and every code or configuration update runs `InProgress` → `Successful`
//! (or `Failed`); a second update during `InProgress` is refused. This mirrors botocore's
//! `FunctionActiveV2` / `FunctionUpdatedV2` waiters, but bounded by `wait-timeout-s` and with
//! backoff between polls.

use std::time::Duration;

use stellar_guest_sdk::{ProviderError, ProviderResult};

use stellar_guest_sdk::retry::{Backoff, Clock, Poll, poll};

use crate::model::FunctionConfiguration;

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `State` = `Active` (after CreateFunction).
    Active,
    /// `LastUpdateStatus` = `Successful` (after UpdateFunctionCode / UpdateFunctionConfiguration).
    Updated,
}

impl Target {
    fn describe(self) -> &'static str {
        match self {
            Target::Active => "become Active",
            Target::Updated => "finish updating",
        }
    }
}

/// What one GetFunction answer means for the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Done,
    /// Not there yet; the status seen.
    Poll(String),
    /// The function will not get there: code, reason.
    Fail(String, String),
}

/// Reads one configuration. An absent status counts as done (older functions and emulators
/// do not report it); unknown statuses keep polling, as botocore's waiters do.
pub(crate) fn step(target: Target, f: &FunctionConfiguration) -> Step {
    let (status, reason, code, ok, pending) = match target {
        Target::Active => (
            f.state.as_deref(),
            &f.state_reason,
            &f.state_reason_code,
            "Active",
            "Pending",
        ),
        Target::Updated => (
            f.last_update_status.as_deref(),
            &f.last_update_status_reason,
            &f.last_update_status_reason_code,
            "Successful",
            "InProgress",
        ),
    };
    match status {
        None => Step::Done,
        Some(s) if s == ok => Step::Done,
        Some("Failed") => Step::Fail(
            code.clone().unwrap_or_default(),
            reason
                .clone()
                .unwrap_or_else(|| "(no reason given)".to_string()),
        ),
        Some(s) if s == pending => Step::Poll(s.to_string()),
        Some(other) => Step::Poll(other.to_string()),
    }
}

/// Polls `fetch` (GetFunction) until `target` is reached, backing off from `poll_interval`
/// up to 8 times that, for at most `timeout` (the guest SDK's [`poll`]).
pub(crate) fn wait(
    target: Target,
    name: &str,
    clock: &mut dyn Clock,
    timeout: Duration,
    poll_interval: Duration,
    mut fetch: impl FnMut() -> ProviderResult<FunctionConfiguration>,
) -> ProviderResult<FunctionConfiguration> {
    let backoff = Backoff::new(poll_interval, poll_interval.saturating_mul(8));
    let outcome = poll(clock, backoff, timeout, || {
        let function = fetch()?;
        match step(target, &function) {
            Step::Done => Ok(Poll::Done(function)),
            Step::Poll(status) => Ok(Poll::Pending(status)),
            Step::Fail(code, reason) => {
                let code = if code.is_empty() {
                    String::new()
                } else {
                    format!("{code}: ")
                };
                let message = format!(
                    "function `{name}` failed to {}: {code}{reason}",
                    target.describe()
                );
                Err(if code.starts_with("Invalid") {
                    ProviderError::Invalid(message)
                } else {
                    ProviderError::Other(message)
                })
            }
        }
    })?;
    outcome.map_err(|timed_out| {
        ProviderError::Transient(format!(
            "function `{name}` did not {} within {} s (still {}); \
             raise the `wait-timeout-s` setting to wait longer",
            target.describe(),
            timeout.as_secs(),
            timed_out.last_status
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GetFunction;
    use stellar_guest_sdk::retry::FakeClock;

    fn canned(json: &str) -> FunctionConfiguration {
        serde_json::from_str::<GetFunction>(json)
            .unwrap()
            .configuration
    }

    /// Feeds the canned answers in order (the last one repeats) and counts the calls.
    fn run(
        target: Target,
        answers: &[&str],
        timeout_s: u64,
    ) -> (ProviderResult<FunctionConfiguration>, FakeClock, usize) {
        let mut clock = FakeClock::default();
        let mut calls = 0;
        let result = wait(
            target,
            "st-f",
            &mut clock,
            Duration::from_secs(timeout_s),
            Duration::from_secs(1),
            || {
                let answer = answers[calls.min(answers.len() - 1)];
                calls += 1;
                Ok(canned(answer))
            },
        );
        (result, clock, calls)
    }

    const PENDING: &str = r#"{"Configuration":{"FunctionName":"st-f","State":"Pending","StateReason":"The function is being created.","StateReasonCode":"Creating"}}"#;
    const ACTIVE: &str = r#"{"Configuration":{"FunctionName":"st-f","State":"Active","LastUpdateStatus":"Successful","CodeSha256":"x"}}"#;
    const FAILED: &str = r#"{"Configuration":{"FunctionName":"st-f","State":"Failed","StateReason":"Lambda was unable to configure access to your environment variables because the KMS key is invalid.","StateReasonCode":"InvalidConfiguration"}}"#;
    const IN_PROGRESS: &str = r#"{"Configuration":{"FunctionName":"st-f","State":"Active","LastUpdateStatus":"InProgress"}}"#;
    const UPDATE_FAILED: &str = r#"{"Configuration":{"FunctionName":"st-f","State":"Active","LastUpdateStatus":"Failed","LastUpdateStatusReason":"Lambda could not unzip the code.","LastUpdateStatusReasonCode":"InvalidZipFileException"}}"#;

    #[test]
    fn pending_then_active() {
        let (result, clock, calls) = run(Target::Active, &[PENDING, PENDING, PENDING, ACTIVE], 300);
        assert_eq!(result.unwrap().code_sha256.as_deref(), Some("x"));
        assert_eq!(calls, 4);
        let s = Duration::from_secs;
        assert_eq!(clock.sleeps, vec![s(1), s(2), s(4)]);
    }

    #[test]
    fn active_at_once_does_not_sleep() {
        let (result, clock, calls) = run(Target::Active, &[ACTIVE], 300);
        assert!(result.is_ok());
        assert_eq!(calls, 1);
        assert!(clock.sleeps.is_empty());
    }

    #[test]
    fn failed_reports_the_reason() {
        let (result, _, calls) = run(Target::Active, &[PENDING, FAILED], 300);
        assert_eq!(calls, 2);
        let err = result.unwrap_err();
        assert_eq!(
            err,
            ProviderError::Invalid(
                "function `st-f` failed to become Active: InvalidConfiguration: Lambda was unable \
                 to configure access to your environment variables because the KMS key is invalid."
                    .to_string()
            )
        );
        let failed_other = canned(
            r#"{"Configuration":{"State":"Failed","StateReasonCode":"SubnetOutOfIPAddresses","StateReason":"no IPs"}}"#,
        );
        assert_eq!(
            step(Target::Active, &failed_other),
            Step::Fail("SubnetOutOfIPAddresses".into(), "no IPs".into())
        );
    }

    #[test]
    fn in_progress_then_successful() {
        let (result, clock, calls) = run(Target::Updated, &[IN_PROGRESS, IN_PROGRESS, ACTIVE], 300);
        assert!(result.is_ok());
        assert_eq!(calls, 3);
        assert_eq!(clock.sleeps.len(), 2);
        // An Active function whose update is running is not done updating.
        assert_eq!(
            step(Target::Updated, &canned(IN_PROGRESS)),
            Step::Poll("InProgress".into())
        );
        assert_eq!(step(Target::Active, &canned(IN_PROGRESS)), Step::Done);
    }

    #[test]
    fn update_failed_reports_the_reason() {
        let (result, _, _) = run(Target::Updated, &[IN_PROGRESS, UPDATE_FAILED], 300);
        assert_eq!(
            result.unwrap_err(),
            ProviderError::Invalid(
                "function `st-f` failed to finish updating: InvalidZipFileException: Lambda could \
                 not unzip the code."
                    .to_string()
            )
        );
    }

    #[test]
    fn gives_up_at_the_timeout() {
        let (result, clock, calls) = run(Target::Active, &[PENDING], 10);
        let err = result.unwrap_err();
        assert!(
            matches!(&err, ProviderError::Transient(m) if m.contains("within 10 s (still Pending)")),
            "{err:?}"
        );
        // Sleeps 1, 2, 4, then the rest (3) up to exactly the timeout, then a last check.
        let s = Duration::from_secs;
        assert_eq!(clock.sleeps, vec![s(1), s(2), s(4), s(3)]);
        assert_eq!(calls, 5);
        assert_eq!(clock.now, s(10));
    }

    #[test]
    fn missing_status_counts_as_done_and_fetch_errors_stop() {
        let bare = canned(r#"{"Configuration":{"FunctionName":"st-f"}}"#);
        assert_eq!(step(Target::Active, &bare), Step::Done);
        assert_eq!(step(Target::Updated, &bare), Step::Done);
        let mut clock = FakeClock::default();
        let err = wait(
            Target::Active,
            "st-f",
            &mut clock,
            Duration::from_secs(5),
            Duration::from_secs(1),
            || Err(ProviderError::NotFound("gone".into())),
        )
        .unwrap_err();
        assert_eq!(err, ProviderError::NotFound("gone".into()));
    }
}
