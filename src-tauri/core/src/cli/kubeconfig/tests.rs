use super::*;

/// What `az aks get-credentials` writes for a cluster with Entra ID integration (kubelogin's
/// docs and test data), plus a legacy auth-provider user and a certificate user.
const AZ_AKS: &str = r#"apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://aks-dns-1234.hcp.westeurope.azmk8s.io:443
  name: aks
contexts:
- context:
    cluster: aks
    user: clusterUser_rg_aks
  name: aks
- context:
    cluster: aks
    user: legacy
  name: old
- context:
    cluster: aks
    user: admin
  name: aks-admin
current-context: aks
kind: Config
preferences: {}
users:
- name: clusterUser_rg_aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - get-token
      - --environment
      - AzurePublicCloud
      - --server-id
      - 6dae42f8-4368-4678-94ff-3960e28e3630
      - --client-id
      - 80faf920-1908-4b52-b5ef-a8e7bedfc67a
      - --tenant-id
      - 72f988bf-86f1-41af-91ab-2d7cd011db47
      - --login
      - devicecode
      command: kubelogin
      env: null
      installHint: install kubelogin
      provideClusterInfo: false
- name: legacy
  user:
    auth-provider:
      config:
        apiserver-id: 11111111-2222-3333-4444-555555555555
        client-id: 80faf920-1908-4b52-b5ef-a8e7bedfc67a
        config-mode: '1'
        environment: AzurePublicCloud
        tenant-id: contoso.onmicrosoft.com
      name: azure
- name: admin
  user:
    client-certificate-data: LS0t
    client-key-data: LS0t
"#;

fn exec_args(config: &Value, user: &str) -> Vec<String> {
    let users = config["users"].as_sequence().unwrap();
    let entry = users
        .iter()
        .find(|u| u["name"].as_str() == Some(user))
        .unwrap();
    let exec = &entry["user"]["exec"];
    assert_eq!(exec["apiVersion"].as_str(), Some(API_VERSION));
    assert_eq!(exec["command"].as_str(), Some("tokentray"));
    exec["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kubelogin_and_auth_provider_users_run_kube_token_with_their_server_and_tenant() {
    let mut config: Value = serde_norway::from_str(AZ_AKS).unwrap();
    let changed = rewrite(&mut config, None, "tokentray").unwrap();
    let names: Vec<&str> = changed.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["clusterUser_rg_aks", "legacy"]);
    assert_eq!(changed[0].1, "kubelogin (devicecode)");
    assert_eq!(
        exec_args(&config, "clusterUser_rg_aks"),
        [
            "kube-token",
            "--server-id",
            "6dae42f8-4368-4678-94ff-3960e28e3630",
            "--tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47"
        ]
    );
    assert_eq!(
        exec_args(&config, "legacy"),
        [
            "kube-token",
            "--server-id",
            "11111111-2222-3333-4444-555555555555",
            "--tenant",
            "contoso.onmicrosoft.com"
        ]
    );
    let users = config["users"].as_sequence().unwrap();
    assert!(users[1]["user"].get("auth-provider").is_none());
    assert_eq!(
        users[2]["user"]["client-certificate-data"].as_str(),
        Some("LS0t")
    );
    // Everything else is as it was.
    let original: Value = serde_norway::from_str(AZ_AKS).unwrap();
    for key in [
        "clusters",
        "contexts",
        "current-context",
        "kind",
        "preferences",
    ] {
        assert_eq!(config[key], original[key], "{key}");
    }
    // Converting again changes nothing.
    assert!(rewrite(&mut config, None, "tokentray").unwrap().is_empty());
}

#[test]
fn a_context_limits_the_change_to_its_user_and_an_unknown_one_is_named() {
    let mut config: Value = serde_norway::from_str(AZ_AKS).unwrap();
    let changed = rewrite(&mut config, Some("old"), "tokentray").unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, "legacy");
    let users = config["users"].as_sequence().unwrap();
    assert_eq!(
        users[0]["user"]["exec"]["command"].as_str(),
        Some("kubelogin")
    );
    let err = rewrite(&mut config, Some("nope"), "tokentray").unwrap_err();
    assert!(err.contains("nope") && err.contains("aks-admin"), "{err}");
}
