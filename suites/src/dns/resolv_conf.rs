//! A pod's /etc/resolv.conf, as the kubelet wrote it.

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => rc.nameservers.extend(w.next().map(String::from)),
                // The last search line wins, as in the resolver.
                Some("search") | Some("domain") => rc.search = w.map(String::from).collect(),
                Some("options") => rc.options.extend(w.map(String::from)),
                _ => {}
            }
        }
        rc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers_search_and_options() {
        let path = format!(
            "{}/tests/fixtures/resolv-conf-cluster-first.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let rc = ResolvConf::parse(&std::fs::read_to_string(path).unwrap());
        assert_eq!(rc.nameservers, vec!["10.96.0.10"]);
        assert_eq!(
            rc.search,
            vec![
                "harness-dns-r1.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(rc.options, vec!["ndots:5"]);
    }
}
