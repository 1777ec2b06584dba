//! The store conformance suite (`src/store/conformance.rs`) against every
//! real backend: s3s-fs (Garage under `make test-compat`, or the external
//! endpoint of `S3_TEST_ENDPOINT`), moto with payloads in an instant and an
//! archived class and on a versioned bucket, and a Glacier vault on fakecloud beside an s3s-fs
//! bucket. The in-memory store runs it as a unit test.

use gpbackup_s3_plugin::commands::store_settings;
use gpbackup_s3_plugin::config::Config;
use gpbackup_s3_plugin::store::{self, conformance};

use crate::support::*;

/// Opens the store a cluster's config selects and runs the suite in a
/// folder of its own.
fn conforms(cluster: &Cluster) {
    let config = Config::load(&cluster.config, gpbackup_s3_plugin::config::Purpose::Check).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = store::open(&store_settings(&config)).await.unwrap();
        conformance::run(store, &format!("{}/conformance/", cluster.folder)).await;
    });
}

#[test]
fn s3_servers_conform() {
    let server = Server::start();
    conforms(&Cluster::new(&server, &[]));
}

#[test]
fn moto_conforms_with_instant_and_archived_payloads() {
    let server = Server::start_moto();
    conforms(&Cluster::new(&server, &[]));
    conforms(&Cluster::new(&server, &[("storage_class", "GLACIER")]));
}

#[test]
fn moto_conforms_on_a_versioned_bucket() {
    let server = Server::start_moto();
    let bucket = format!("{}-ver", server.bucket);
    assert!(server.curl(&bucket, &["-X", "PUT"]).status.success());
    let body = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let out = server.curl(
        &format!("{bucket}?versioning"),
        &["-X", "PUT", "-H", "Content-Type: application/xml", "--data-binary", body],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    conforms(&Cluster::new(&server, &[("bucket", &bucket)]));
}

#[test]
fn a_vault_on_fakecloud_conforms() {
    let s3 = Server::start();
    let glacier = Glacier::fakecloud();
    let vault = format!("conformance-{}", std::process::id());
    let cluster = Cluster::new(
        &s3,
        &[
            ("storage", "glacier"),
            ("vault", &vault),
            ("glacier_endpoint", &glacier.endpoint),
            ("vault_part_size", "1MB"),
            ("restore_tier", "Expedited"),
        ],
    );
    let dir = cluster.backup_dir("coordinator", "20240101010101").display().to_string();
    assert_ok(&cluster.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    conforms(&cluster);
}
