"""A local emulator of Instagram direct messages on the Messenger Platform: the Messenger
emulator (emulators.facebook) with what Instagram does differently (docs/networks.md 3.3).

* Webhooks come under the object "instagram"; an entry and a message's recipient name the
  Instagram professional account (its IGID), the sender the person's IGSID. Instagram reports
  no deliveries (the emulator pushes echoes, as the platform does for the account's own sends).
* The Send API is the same call (`/{version}/me/messages` or `/{page-id}/messages` with the
  token of the Page linked to the account), the same windows (24 h; HUMAN_AGENT up to 7 days,
  error 10/2018278 outside) and quick replies (13, titles of 20 characters).
* A text has at most 1000 UTF-8 bytes. An image is a PNG, JPEG or GIF of at most 8 MB; video and
  audio at most 25 MB; a `file` is a PDF of at most 25 MB.

* The account's media and their comments (emulators.meta_comments): comments come as changes
  of the field `comments`, new ones only; the account answers on `/{ig-comment-id}/replies`.

Unconfirmed and chosen here: the wording of the refusals of a long text and of a file (100, as
on Messenger); that an image may be uploaded with the message (one revision of Meta's page says
images go by URL only); GIF among the images; the PDF-only rule for files.

Run standalone: `python -m emulators.instagram --port 8084`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.util.file_types import picture_type
from emulators.facebook import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_PAGE_ID,
    DEFAULT_PAGE_TOKEN,
    JSON,
    FacebookEmulator,
    GraphError,
)
from emulators.meta_comments import PostComments
from emulators.standalone import options, serve

DEFAULT_ACCOUNT_ID = "17841400000000001"  # an IGID: Instagram professional accounts' look so
MAX_TEXT_BYTES = 1000
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_MEDIA_BYTES = 25 * 1024 * 1024


class InstagramEmulator(FacebookEmulator):
    """One emulated Instagram professional account, linked to a Page of one app."""

    webhook_object = "instagram"
    pushes_deliveries = False

    def __init__(
        self,
        page_token: str = DEFAULT_PAGE_TOKEN,
        *,
        app_secret: str = DEFAULT_APP_SECRET,
        page_id: str = DEFAULT_PAGE_ID,
        account_id: str = DEFAULT_ACCOUNT_ID,
        app_id: str = DEFAULT_APP_ID,
        seed: int = 0,
        webhook_retry_delay: float = 1.0,
        webhook_retry_cap: float = 60.0,
        webhook_timeout: float = 20.0,
        files_url: str | None = None,
    ) -> None:
        super().__init__(
            page_token,
            app_secret=app_secret,
            page_id=page_id,
            app_id=app_id,
            seed=seed,
            webhook_retry_delay=webhook_retry_delay,
            webhook_retry_cap=webhook_retry_cap,
            webhook_timeout=webhook_timeout,
            files_url=files_url,
        )
        self.account_id = account_id
        self.comments = PostComments(
            account_id, self._push_change, instagram=True, first_number=seed * 1000 + 1
        )

    def me(self) -> JSON:
        """The Page, with the Instagram account linked to it."""
        return {"id": self.page_id, "instagram_business_account": {"id": self.account_id}}

    def _check_text(self, text: str) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise GraphError(
                100, f"(#100) param message[text] must be at most {MAX_TEXT_BYTES} UTF-8 bytes"
            )

    def _check_file(self, kind: str, data: bytes) -> str | None:
        picture = picture_type(data)
        if kind == "image":
            if picture is None:
                raise GraphError(100, "(#100) Upload attachment failure: not a PNG, JPEG or GIF")
            if len(data) > MAX_IMAGE_BYTES:
                raise GraphError(100, "(#100) Upload attachment failure: an image exceeds 8 MB")
            return picture
        if len(data) > MAX_MEDIA_BYTES:
            raise GraphError(100, "(#100) Upload attachment failure: the file exceeds 25 MB")
        if kind == "file":
            if not data.startswith(b"%PDF-"):
                raise GraphError(100, "(#100) Upload attachment failure: a file must be a PDF")
            return "application/pdf"
        return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = options("emulators.instagram", "Run the Instagram messaging emulator.", port=8084)
    parser.add_argument("--page-token", default=DEFAULT_PAGE_TOKEN)
    parser.add_argument("--app-secret", default=DEFAULT_APP_SECRET)
    args = parser.parse_args(argv)
    emulator = InstagramEmulator(args.page_token, app_secret=args.app_secret, seed=args.seed)
    serve(emulator.app, args)


if __name__ == "__main__":
    main()
