use std::path::Path;

use super::*;

#[test]
fn reads_git_s_request_up_to_the_blank_line() {
    let text = "capability[]=authtype\nprotocol=https\nhost=dev.azure.com\npath=contoso/web/_git/web\nwwwauth[]=Basic realm=\"x\"\n\nhost=evil.example\n";
    assert_eq!(
        Request::parse(text),
        Request {
            protocol: Some("https"),
            host: Some("dev.azure.com"),
            path: Some("contoso/web/_git/web"),
        }
    );
    assert_eq!(Request::parse(""), Request::default());
    assert_eq!(Request::parse("garbage\nhost"), Request::default());
}

#[test]
fn hosts_match_exactly_or_under_a_wildcard_domain() {
    let hosts: Vec<String> = crate::config::DEFAULT_GIT_HOSTS.map(String::from).to_vec();
    assert!(host_matches(&hosts, "dev.azure.com"));
    assert!(host_matches(&hosts, "DEV.Azure.com"));
    assert!(host_matches(&hosts, "contoso.visualstudio.com"));
    assert!(!host_matches(&hosts, "visualstudio.com"));
    assert!(!host_matches(&hosts, ".visualstudio.com"));
    assert!(!host_matches(&hosts, "evilvisualstudio.com"));
    assert!(!host_matches(&hosts, "dev.azure.com.evil.example"));
    assert!(!host_matches(&hosts, "dev.azure.com:8443"));
    assert!(!host_matches(&hosts, "github.com"));
    assert!(host_matches(&["127.0.0.1:8443".into()], "127.0.0.1:8443"));
}

#[test]
fn the_organisation_comes_from_the_subdomain_or_the_first_path_segment() {
    assert_eq!(
        organisation("contoso.visualstudio.com", Some("web/_git/web")),
        Some("contoso")
    );
    assert_eq!(
        organisation("dev.azure.com", Some("fabrikam/web/_git/web")),
        Some("fabrikam")
    );
    assert_eq!(
        organisation("dev.azure.com", Some("/fabrikam/x")),
        Some("fabrikam")
    );
    assert_eq!(organisation("dev.azure.com", None), None);
    assert_eq!(
        organisation("127.0.0.1:8443", Some("org/repo")),
        Some("org")
    );
}

#[test]
fn the_helper_is_quoted_for_git_s_shell_only_when_it_must_be() {
    assert_eq!(
        helper_command(Path::new("/usr/bin/tokentray")),
        "/usr/bin/tokentray git-credential"
    );
    assert_eq!(
        helper_command(Path::new("/home/a b/it's/tokentray")),
        r"!'/home/a b/it'\''s/tokentray' git-credential"
    );
}
