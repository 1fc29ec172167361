//! Data-transfer chains on the host side: how a chain is provisioned, and what becomes of the
//! chain replies (`data-transfers.csv`, the transfer-time plot, the report section).
//!
//! Why a module of its own: the provisioner and the driver stay generic. For a sub-experiment
//! with `DataTransferChainLength` N > 1, [`crate::provision`] deploys every endpoint as N
//! functions through the adapter, last hop first, and gives each the environment
//! [`member_env`] builds (its position and its successor's URL, as the adapter returned it);
//! the driver calls hop 0 as it calls any function and hands every reply to
//! [`transfers::TransferSink`]. Which clock each number comes from is documented in
//! `stellar_results::transfers`.

pub mod storage;
pub mod transfers;

use stellar_config::SubExperimentPlan;
use stellar_measure::chain::{self, Transfer};

pub use storage::ChainStorage;

/// The name of hop `hop` of the chain whose producer is `base` (the producer keeps the plain
/// name, so journals, cleanup and instance records treat it like any function).
pub fn member_name(base: &str, hop: u32) -> String {
    if hop == 0 {
        base.to_owned()
    } else {
        format!("{base}-{hop:02}")
    }
}

/// How payloads travel in `sub`'s chains.
pub fn transfer_of(sub: &SubExperimentPlan, storage: Option<&ChainStorage>) -> Transfer {
    match (sub.storage_transfer, storage) {
        (true, Some(s)) => s.transfer(),
        _ => Transfer::Inline,
    }
}

/// The chain variables of hop `hop` of `sub` (see `stellar_measure::chain`), plus the storage
/// configuration when payloads go through storage.
pub fn member_env(
    sub: &SubExperimentPlan,
    hop: u32,
    next_url: Option<&str>,
    storage: Option<&ChainStorage>,
) -> Vec<(String, String)> {
    let transfer = transfer_of(sub, storage);
    let mut env = vec![
        (chain::HOP_ENV.to_owned(), hop.to_string()),
        (
            chain::LENGTH_ENV.to_owned(),
            sub.data_transfer_chain_length.to_string(),
        ),
        (chain::TRANSFER_ENV.to_owned(), transfer.as_str().to_owned()),
    ];
    if let Some(url) = next_url {
        env.push((chain::NEXT_URL_ENV.to_owned(), url.to_owned()));
    }
    if transfer != Transfer::Inline
        && let Some(storage) = storage
    {
        env.extend(storage.function_env());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(length: u32, storage: bool) -> SubExperimentPlan {
        let text = format!(
            r#"{{"Provider": "local", "SubExperiments": [{{"Bursts": 1, "BurstSizes": [1],
                "DesiredServiceTimes": ["0ms"], "DataTransferChainLength": {length},
                "StorageTransfer": {storage}}}]}}"#
        );
        let plan = stellar_config::Plan::from_json_str(
            &text,
            std::path::Path::new("x.json"),
            &stellar_config::PlanOptions::default(),
        )
        .unwrap();
        plan.sub_experiments[0].clone()
    }

    #[test]
    fn member_names_keep_the_producer_name() {
        assert_eq!(member_name("st-abcdef-00-01", 0), "st-abcdef-00-01");
        assert_eq!(member_name("st-abcdef-00-01", 7), "st-abcdef-00-01-07");
    }

    #[test]
    fn env_names_position_successor_and_transfer() {
        let s = sub(3, false);
        let env = member_env(&s, 1, Some("http://127.0.0.1:1/f-02"), None);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get(chain::HOP_ENV), Some("1"));
        assert_eq!(get(chain::LENGTH_ENV), Some("3"));
        assert_eq!(get(chain::TRANSFER_ENV), Some("inline"));
        assert_eq!(get(chain::NEXT_URL_ENV), Some("http://127.0.0.1:1/f-02"));
        let last = member_env(&s, 2, None, None);
        assert!(last.iter().all(|(k, _)| k != chain::NEXT_URL_ENV));
        // The environment a function reads back is the one given here.
        let config = chain::ChainConfig::from_env(|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap()
        .unwrap();
        assert_eq!((config.hop, config.length), (1, 3));
    }
}
