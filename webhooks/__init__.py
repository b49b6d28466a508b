"""Webhooks from GitHub and Xcode Cloud (SPEC section 8): verified, stored, answered, processed durably."""
