//! The `ChatSDKDeployment` custom resource (group `chatsdk.io`, version `v1alpha1`).
