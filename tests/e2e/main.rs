//! End-to-end tests across crates: the `stellar` binary on the local provider, and the plugin
//! sandbox against a deliberately hostile component. One test binary (style: one integration
//! binary per crate).

#![allow(
    clippy::print_stderr,
    reason = "tests report measured timings on stderr"
)]

mod aliyun;
mod analysis;
mod aws;
mod aws_run;
mod azure;
mod chains;
mod cold_labels;
mod contract;
mod faults;
mod gcr;
mod grpc;
mod interrupt;
mod lambda_watch;
mod oci;
mod orphans;
mod plugins;
mod preconnect;
mod registry;
mod run_local;
mod scale;
mod shards;
mod support;
mod third_party;
mod vhive;
