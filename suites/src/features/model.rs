//! The agent's JSON, read into what the features judges take: `cilium-dbg status -o json`
//! (StatusResponse of Cilium's API model: `kube-proxy-replacement`, `bandwidth-manager`),
//! `cilium-dbg service list -o json` (a list of the model's Service: `spec.frontend-address`,
//! `spec.backend-addresses`, `spec.flags.type`) and `cilium-dbg bpf bandwidth list -o json` (the
//! throttle map dumped as `{"<key>": ["<value>"]}`, as cilium-dbg prints any map).

use super::judge::LbService;
use serde_json::Value;

/// The parts of an agent's status the features checks read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub kube_proxy_replacement: Option<String>,
    pub bandwidth_enabled: bool,
    pub congestion_control: Option<String>,
    pub bandwidth_devices: Vec<String>,
}

pub fn parse_status(text: &str) -> Result<Status, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if !v.is_object() {
        return Err("not a StatusResponse object".into());
    }
    let bw = &v["bandwidth-manager"];
    Ok(Status {
        kube_proxy_replacement: v["kube-proxy-replacement"]["mode"]
            .as_str()
            .map(String::from),
        bandwidth_enabled: bw["enabled"].as_bool().unwrap_or(false),
        congestion_control: bw["congestionControl"].as_str().map(String::from),
        bandwidth_devices: bw["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(String::from))
            .collect(),
    })
}

fn addr(a: &Value) -> String {
    match a["port"].as_u64() {
        Some(p) => format!("{}:{p}", a["ip"].as_str().unwrap_or_default()),
        None => a["ip"].as_str().unwrap_or_default().to_string(),
    }
}

pub fn parse_services(text: &str) -> Result<Vec<LbService>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = v.as_array().ok_or("not a list of services")?;
    Ok(list
        .iter()
        .map(|s| {
            let spec = &s["spec"];
            LbService {
                frontend: addr(&spec["frontend-address"]),
                kind: spec["flags"]["type"].as_str().unwrap_or_default().into(),
                backends: spec["backend-addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(addr)
                    .collect(),
            }
        })
        .collect())
}

pub fn parse_bandwidth(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = v.as_object().ok_or("not a map of entries")?;
    Ok(map
        .iter()
        .map(|(k, vals)| {
            let first = vals
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or_default();
            (k.clone(), first.to_string())
        })
        .collect())
}
