//! Why the kit could not observe. These are not verdicts: a check whose observation failed is
//! reported as an error of the harness or the environment, never as a cluster failure and never
//! as a pass. Each message says what was attempted and what to look at.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("{action}: {detail}")]
    Api { action: String, detail: String },

    #[error("timed out after {} waiting for {what}; last seen: {last_seen}", seconds(*waited))]
    Timeout {
        what: String,
        waited: Duration,
        last_seen: String,
    },

    #[error("exec {argv0:?} in {pod}: {reason}")]
    Exec {
        pod: String,
        argv0: String,
        reason: String,
    },

    #[error("image {var}={value:?} cannot be used: {reason}")]
    Image {
        var: String,
        value: String,
        reason: String,
    },

    #[error("{what} is missing: {hint}")]
    Missing { what: String, hint: String },

    #[error("could not read {what}: {detail}")]
    Parse { what: String, detail: String },

    #[error("setup of the {suite} suite failed, so this check could not run: {cause}")]
    Setup { suite: String, cause: String },
}

/// `180s`, or `0.25s` below a second, so short test timeouts do not read as zero.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

impl KitError {
    /// Wraps a kube error with the action that caused it, keeping the API server's own words
    /// (its Status message names the object and the rule) rather than kube's debug dump.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KitError {
        let action = action.into();
        move |e| KitError::Api {
            action,
            detail: describe_kube_error(&e),
        }
    }
}

/// The part of a kube error a person can act on.
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let mut s = status.message.clone();
            if s.is_empty() {
                s = "the API server gave no message".into();
            }
            if !status.reason.is_empty() || status.code != 0 {
                s.push_str(&format!(" ({} {})", status.code, status.reason));
            }
            s
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    #[test]
    fn api_errors_keep_the_servers_message_and_code() {
        let status = Status::failure(
            "namespaces \"harness-dns-r1\" is forbidden: User \"ci\" cannot create resource",
            "Forbidden",
        )
        .with_code(403);
        let err =
            KitError::api("create namespace harness-dns-r1")(kube::Error::Api(status.boxed()));
        assert_eq!(
            err.to_string(),
            "create namespace harness-dns-r1: namespaces \"harness-dns-r1\" is forbidden: User \"ci\" cannot create resource (403 Forbidden)"
        );
    }

    #[test]
    fn timeouts_name_what_was_awaited_and_what_was_seen() {
        let err = KitError::Timeout {
            what: "pod ns/client Ready".into(),
            waited: Duration::from_secs(180),
            last_seen: "Pending: container client waiting: ImagePullBackOff".into(),
        };
        assert_eq!(
            err.to_string(),
            "timed out after 180s waiting for pod ns/client Ready; last seen: Pending: container client waiting: ImagePullBackOff"
        );
    }
}
