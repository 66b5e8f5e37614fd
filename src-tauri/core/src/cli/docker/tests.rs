use super::*;

#[test]
fn the_registry_is_the_host_of_what_docker_sends() {
    assert_eq!(
        registry_host("myreg.azurecr.io\n"),
        Some("myreg.azurecr.io")
    );
    assert_eq!(
        registry_host("https://myreg.azurecr.io/v2/"),
        Some("myreg.azurecr.io")
    );
    assert_eq!(registry_host("127.0.0.1:5000"), Some("127.0.0.1:5000"));
    assert_eq!(registry_host(""), None);
    assert_eq!(registry_host("a b"), None);
}
