//! Bounded retries: a probe passes only after N consecutive successes within a deadline.
//!
//! One success proves little on a cluster that is still converging (a Service's backends being
//! programmed, a DNS cache warming); consecutive successes show the path is stable, and the
//! deadline keeps a broken path from stalling the run. The loop keeps every attempt so the judge
//! can tell "never worked" from "flapping".

use crate::kit::errors::KitError;
use crate::kit::verdict::Verdict;
use std::future::Future;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Successes in a row that make a pass.
    pub consecutive: u32,
    /// No attempt starts after this much time since the first.
    pub deadline: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            consecutive: 3,
            deadline: Duration::from_secs(60),
            interval: Duration::from_secs(1),
        }
    }
}

/// One attempt: either the probe ran and produced data, or it could not run at all.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Try<T> {
    Observed(T),
    NotRun(String),
}

/// Every attempt of one probe, in order, and the policy they ran under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Series<T> {
    pub required: u32,
    pub deadline: Duration,
    pub elapsed: Duration,
    pub tries: Vec<Try<T>>,
}

/// Runs `attempt` until `ok` holds for `policy.consecutive` attempts in a row or the deadline
/// passes. Fails only when not a single attempt could run, since then there is no data to judge.
pub async fn until_stable<T, F, Fut>(
    policy: &RetryPolicy,
    mut attempt: F,
    ok: impl Fn(&T) -> bool,
) -> Result<Series<T>, KitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, KitError>>,
{
    let start = tokio::time::Instant::now();
    let required = policy.consecutive.max(1);
    let mut tries = Vec::new();
    let mut streak = 0;
    let mut last_error = None;
    loop {
        match attempt().await {
            Ok(t) => {
                streak = if ok(&t) { streak + 1 } else { 0 };
                tries.push(Try::Observed(t));
            }
            Err(e) => {
                streak = 0;
                tries.push(Try::NotRun(e.to_string()));
                last_error = Some(e);
            }
        }
        if streak >= required || start.elapsed() + policy.interval >= policy.deadline {
            break;
        }
        tokio::time::sleep(policy.interval).await;
    }
    if tries.iter().all(|t| matches!(t, Try::NotRun(_)))
        && let Some(e) = last_error
    {
        return Err(e);
    }
    Ok(Series {
        required,
        deadline: policy.deadline,
        elapsed: start.elapsed(),
        tries,
    })
}

/// Judges a series with the judge of a single attempt. The same `one` must drive `ok` in
/// [`until_stable`], so the loop and the verdict cannot disagree.
pub fn judge_series<T>(s: &Series<T>, one: impl Fn(&T) -> Verdict) -> Verdict {
    let verdicts: Vec<Verdict> = s
        .tries
        .iter()
        .map(|t| match t {
            Try::Observed(x) => one(x),
            Try::NotRun(e) => Verdict::Fail(format!("the probe could not run: {e}")),
        })
        .collect();
    let streak = verdicts.iter().rev().take_while(|v| v.is_pass()).count() as u32;
    let Some(last) = verdicts.last() else {
        return Verdict::Fail("no attempt was made".into());
    };
    if streak >= s.required {
        return Verdict::Pass(format!("{} ({streak} in a row)", last.message()));
    }
    let successes = verdicts.iter().filter(|v| v.is_pass()).count();
    let tally = format!(
        "{} attempts over {:.0}s, {successes} succeeded; needed {} in a row within {}s",
        verdicts.len(),
        s.elapsed.as_secs_f64(),
        s.required,
        s.deadline.as_secs()
    );
    if last.is_pass() {
        // The latest attempt worked, so show the failure that broke the streak.
        let broke = verdicts
            .iter()
            .rev()
            .find(|v| !v.is_pass())
            .map_or("", |v| v.message());
        Verdict::Fail(format!("unstable: {broke} [{tally}]"))
    } else if successes > 0 {
        Verdict::Fail(format!("unstable: {} [{tally}]", last.message()))
    } else {
        Verdict::Fail(format!("{} [{tally}]", last.message()))
    }
}

/// One probe of a multi-target check, e.g. one node of pod-to-host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Leg<T> {
    /// `from -> to`, as a person would say it.
    pub what: String,
    pub series: Series<T>,
}

pub fn judge_legs<T>(legs: &[Leg<T>], one: impl Fn(&T) -> Verdict) -> Verdict {
    Verdict::all(
        legs.iter()
            .map(|l| (l.what.clone(), judge_series(&l.series, &one))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            consecutive: 3,
            deadline: Duration::from_secs(10),
            interval: Duration::from_secs(1),
        }
    }

    fn judge(ok: &bool) -> Verdict {
        if *ok {
            Verdict::Pass("200 OK".into())
        } else {
            Verdict::Fail("timed out".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_the_required_streak() {
        let script = [false, true, true, true, true];
        let n = Cell::new(0);
        let s = until_stable(
            &policy(),
            || {
                let i = n.get();
                n.set(i + 1);
                async move { Ok::<_, KitError>(script[i]) }
            },
            |b| judge(b).is_pass(),
        )
        .await
        .unwrap();
        assert_eq!(s.tries.len(), 4);
        assert_eq!(
            judge_series(&s, judge),
            Verdict::Pass("200 OK (3 in a row)".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_probe_fails_at_the_deadline_and_says_unstable() {
        let n = Cell::new(0u32);
        let s = until_stable(
            &policy(),
            || {
                let i = n.get();
                n.set(i + 1);
                async move { Ok::<_, KitError>(i.is_multiple_of(2)) }
            },
            |b| judge(b).is_pass(),
        )
        .await
        .unwrap();
        // Attempts start at 0s..=9s: the next would start at the 10s deadline.
        assert_eq!(s.tries.len(), 10);
        assert_eq!(
            judge_series(&s, judge),
            Verdict::Fail(
                "unstable: timed out [10 attempts over 9s, 5 succeeded; needed 3 in a row within 10s]"
                    .into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_runs_is_an_error_not_a_verdict() {
        let r = until_stable(
            &policy(),
            || async {
                Err::<bool, _>(KitError::Exec {
                    pod: "ns/client".into(),
                    argv0: "curl".into(),
                    reason: "pods \"client\" not found".into(),
                })
            },
            |b| *b,
        )
        .await;
        assert!(r.unwrap_err().to_string().contains("not found"));
    }

    #[test]
    fn never_succeeded_names_the_last_failure() {
        let s = Series {
            required: 3,
            deadline: Duration::from_secs(60),
            elapsed: Duration::from_secs(59),
            tries: vec![
                Try::Observed(false),
                Try::NotRun("exec refused".into()),
                Try::Observed(false),
            ],
        };
        assert_eq!(
            judge_series(&s, judge),
            Verdict::Fail(
                "timed out [3 attempts over 59s, 0 succeeded; needed 3 in a row within 60s]".into()
            )
        );
    }
}
