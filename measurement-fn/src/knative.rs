//! The instance id on Knative (vHive): the pod's `HOSTNAME`.
//!
//! Knative Serving sets `K_SERVICE`, `K_CONFIGURATION` and `K_REVISION` in the user container,
//! as Cloud Run does; what tells the two apart is Kubernetes itself, which sets
//! `KUBERNETES_SERVICE_HOST` in every pod (Cloud Run does not). In a pod, `HOSTNAME` is the pod
//! name: one per instance (a restarted container keeps it), so it is both the instance id and
//! the platform instance id, and the Cloud Run metadata server is not asked.

/// Set by Kubernetes in every pod.
pub const KUBERNETES_ENV: &str = "KUBERNETES_SERVICE_HOST";
/// The pod name inside a pod.
pub const HOSTNAME_ENV: &str = "HOSTNAME";

/// True on Knative: `K_SERVICE` and [`KUBERNETES_ENV`] are both set.
pub fn on_knative(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |var: &str| env(var).is_some_and(|v| !v.trim().is_empty());
    set(crate::cloud_run::SERVICE_ENV) && set(KUBERNETES_ENV)
}

/// The pod name on Knative, else `None`.
pub fn instance_id_from_env(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if !on_knative(&env) {
        return None;
    }
    env(HOSTNAME_ENV)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn pod_name_only_on_knative() {
        let knative = env_of(&[
            ("K_SERVICE", "fn"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("HOSTNAME", "fn-00001-deployment-5d8f-abcde"),
        ]);
        assert_eq!(
            instance_id_from_env(knative).as_deref(),
            Some("fn-00001-deployment-5d8f-abcde")
        );
        // Cloud Run: K_SERVICE without Kubernetes.
        assert_eq!(
            instance_id_from_env(env_of(&[("K_SERVICE", "fn"), ("HOSTNAME", "x")])),
            None
        );
        // A plain Kubernetes pod is not Knative.
        assert_eq!(
            instance_id_from_env(env_of(&[
                ("KUBERNETES_SERVICE_HOST", "h"),
                ("HOSTNAME", "x")
            ])),
            None
        );
    }
}
