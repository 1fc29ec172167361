#[test]
fn sdk_vector_put_block_blob_path_style() {
    let headers: &[(&str, &str)] = &[("Content-Length", "1048576"), ("Content-Type", "application/zip"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-date", "Tue, 02 Dec 2025 01:02:03 GMT"), ("x-ms-version", "2023-11-03")];
    let query: &[(&str, &str)] = &[];
    let req = Signable { method: "PUT", account: "devstoreaccount1", path: "/devstoreaccount1/deployments/released-package.zip", query, headers };
    assert_eq!(authorization(DEV_KEY, &req).unwrap(), "SharedKey devstoreaccount1:8csH3pk2ncn9DAHsEsaOFMg0cQ13qWsokk7dsOrcNNw=");
}

#[test]
fn sdk_vector_get_container_list_with_query() {
    let headers: &[(&str, &str)] = &[("x-ms-date", "Wed, 03 Dec 2025 10:00:00 GMT"), ("x-ms-version", "2023-11-03"), ("x-ms-client-request-id", "req-42")];
    let query: &[(&str, &str)] = &[("restype", "container"), ("comp", "list"), ("prefix", "a b")];
    let req = Signable { method: "GET", account: "stabc123", path: "/deployments", query, headers };
    assert_eq!(authorization("c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==", &req).unwrap(), "SharedKey stabc123:Ci/iNtEGUWxayrulv3wbUqcjl8S+lENl4iHAIVxy0AM=");
}

#[test]
fn sdk_vector_zero_length_put() {
    let headers: &[(&str, &str)] = &[("Content-Length", "0"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-date", "Wed, 03 Dec 2025 10:00:00 GMT"), ("x-ms-version", "2023-11-03")];
    let query: &[(&str, &str)] = &[];
    let req = Signable { method: "PUT", account: "stabc123", path: "/deployments/empty.zip", query, headers };
    assert_eq!(authorization("c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==", &req).unwrap(), "SharedKey stabc123:0i1ueOj73K+OkXNGDnlrY1IFT2ww2xnkEYH0pFB3bZg=");
}

