use super::*;

#[test]
fn answers_in_the_version_client_go_asks_for() {
    for version in API_VERSIONS {
        let info = format!(
            r#"{{"kind":"ExecCredential","apiVersion":"{version}","spec":{{"interactive":false}}}}"#
        );
        assert_eq!(api_version(Some(&info)).unwrap(), version);
    }
    assert_eq!(api_version(None).unwrap(), DEFAULT_API_VERSION);
    assert_eq!(api_version(Some("  ")).unwrap(), DEFAULT_API_VERSION);
}

#[test]
fn an_unknown_version_or_bad_json_says_what_to_set() {
    let info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
    let err = api_version(Some(info)).unwrap_err().to_string();
    assert!(
        err.contains("v1alpha1") && err.contains("users[].user.exec.apiVersion"),
        "{err}"
    );
    let err = api_version(Some("{")).unwrap_err().to_string();
    assert!(err.contains("KUBERNETES_EXEC_INFO"), "{err}");
}
