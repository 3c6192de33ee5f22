//! The three suites against a real cluster. Run with
//! `cargo nextest run -p suites --run-ignored only --test live_cluster` and a KUBECONFIG that
//! points at a Talos + Cilium cluster with images pullable (or HARNESS_IMAGE_REGISTRY set).

use suites::{CheckFilter, CheckOutcome, RunOptions, run_suite};

#[tokio::test]
#[ignore = "needs a live cluster: KUBECONFIG for a Talos + Cilium cluster with two nodes"]
async fn connectivity_dns_and_pod_security_pass_on_a_live_cluster() {
    let client = kube::Client::try_default().await.expect("a kubeconfig");
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&Default::default())
        .await
        .expect("list nodes")
        .items
        .len() as u32;
    let ctx = suites::RunContext {
        features: suites::Features {
            kube_proxy_replacement: true,
            gateway_api: false,
            wireguard: false,
            node_encryption: false,
            hubble: false,
            hubble_relay: false,
            hubble_ui: false,
            l2_announcements: false,
            l7_proxy: true,
            host_firewall: false,
            bandwidth_manager: false,
            bbr: false,
            mutual_auth_spire: false,
            policy_enforcement: true,
            host_legacy_routing: false,
            routing: suites::Routing::Vxlan,
        },
        nodes,
        external_target: std::env::var("HARNESS_EXTERNAL_TARGET").ok(),
        outside: None,
    };
    let run_id = format!("live-{}", std::process::id());
    let opts = RunOptions::from_env(&run_id).expect("image overrides");
    let filter = CheckFilter::new(&[], &[]).unwrap();
    let mut bad = Vec::new();
    for suite in [
        suites::connectivity::NAME,
        suites::dns::NAME,
        suites::pod_security::NAME,
    ] {
        let run = run_suite(&client, suite, &ctx, &filter, &opts).await;
        for c in &run.checks {
            if let CheckOutcome::Failed { message } | CheckOutcome::Error { message } = &c.outcome {
                bad.push(format!(
                    "{}: {message}\n{}",
                    c.name(),
                    c.transcript.render()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
