"""Word lists of our own: role mailboxes, title words, search and social hosts, spam terms."""

from __future__ import annotations

from importlib import resources

# Shared mailboxes rather than a person (compared without dots, dashes, underscores).
ROLE_LOCAL_PARTS = frozenset(
    [
        "abuse",
        "accounting",
        "accounts",
        "admin",
        "administrator",
        "billing",
        "careers",
        "contact",
        "contactus",
        "customercare",
        "customerservice",
        "enquiries",
        "enquiry",
        "feedback",
        "finance",
        "hello",
        "help",
        "helpdesk",
        "hi",
        "hostmaster",
        "hr",
        "info",
        "inquiries",
        "inquiry",
        "jobs",
        "legal",
        "mail",
        "mailerdaemon",
        "marketing",
        "media",
        "newsletter",
        "noreply",
        "donotreply",
        "office",
        "orders",
        "postmaster",
        "press",
        "privacy",
        "purchasing",
        "recruiting",
        "recruitment",
        "reservations",
        "root",
        "sales",
        "security",
        "service",
        "services",
        "shop",
        "support",
        "team",
        "tech",
        "webmaster",
        "welcome",
    ]
)

SEARCH_HOSTS = (
    "google.",
    "bing.com",
    "duckduckgo.com",
    "search.yahoo.",
    "yahoo.com",
    "baidu.com",
    "yandex.",
    "ecosia.org",
    "startpage.com",
    "search.brave.com",
    "qwant.com",
    "naver.com",
)
SOCIAL_HOSTS = (
    "facebook.com",
    "fb.com",
    "instagram.com",
    "linkedin.com",
    "lnkd.in",
    "t.co",
    "twitter.com",
    "x.com",
    "youtube.com",
    "youtu.be",
    "reddit.com",
    "pinterest.",
    "tiktok.com",
    "xing.com",
    "threads.net",
    "mastodon.",
    "bsky.app",
    "news.ycombinator.com",
)
WEBMAIL_HOSTS = (
    "mail.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "mail.yahoo.com",
    "mail.proton.me",
    "webmail.",
    "mail.aol.com",
    "gmx.",
    "web.de",
)


def builtin_spam_terms() -> tuple[str, ...]:
    """Phrases of contact-form spam (SEO offers, crypto, casinos, pills, loans ...)."""
    text = resources.files("leadflow.validation").joinpath("spam_terms.txt").read_text("utf-8")
    return tuple(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
