"""What the app's pages share (the pages themselves live in pages/)."""
