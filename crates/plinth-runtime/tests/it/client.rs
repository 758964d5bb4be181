//! Client connection errors say what to check.

use std::time::Duration;

use plinth_runtime::client::connect;

#[tokio::test]
async fn refused_connection_says_to_start_the_service() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let message = connect(&endpoint, None, None, Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "cannot reach http://127.0.0.1:{port}/: connection refused; is the service running? start it with `plinth up`"
        )
    );
}

#[tokio::test]
async fn unsupported_scheme_and_bad_token_are_rejected() {
    let endpoint: url::Url = "ftp://127.0.0.1:1".parse().unwrap();
    let message = connect(&endpoint, None, None, Duration::from_secs(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("the scheme must be http:// or https://"),
        "{message}"
    );

    let endpoint: url::Url = "http://127.0.0.1:1".parse().unwrap();
    let message = connect(
        &endpoint,
        None,
        Some("bad\ntoken".to_owned()),
        Duration::from_secs(1),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("API token contains characters"),
        "{message}"
    );
}
