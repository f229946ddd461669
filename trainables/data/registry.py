"""The benchmark datasets this project knows, with the counts and checksums they must match."""

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDataset:
    """A benchmark: expected document and class counts, and sha256 of each file (gzip, content)."""

    name: str
    train: int
    test: int
    classes: int
    sha256: dict[str, tuple[str, str]]


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "mr": KnownDataset(
        "mr",
        7108,
        3554,
        2,
        {
            "train": (
                "95c78d332cf9dbbecb9b923542c4a0c802c4b99db1721839bd0a5fc194272a6b",
                "9f38f3246b28a9f37c176ed7ef23e15e273e2af0ef30d334aeaa005973f37794",
            ),
            "test": (
                "b0090fa0db2b2ee13b53eae382d9eb8cde8c6556afc08a3f37934e8c015ae91e",
                "909e17bd8acc8ee7f25cb041b8d72e9f44d776a2ae4e6e6bc536aa7800a2056b",
            ),
        },
    ),
    "r8": KnownDataset(
        "r8",
        5485,
        2189,
        8,
        {
            "train": (
                "5e004fa554290e2d332a95a70c2b1aa169fb254e8981a34c6f61abda09630220",
                "50101575ba6e61e4282a2aba0e581bd77aaf50b4649304b980292594c3637fc7",
            ),
            "test": (
                "52f6e33664adc41de40ac14590bb4f3060b5e38191270aea110b7b0ca5cef83f",
                "a0686b11272d924fc79076ec5f91901108578709a42a55474ca9ab12984843c4",
            ),
        },
    ),
    "r52": KnownDataset(
        "r52",
        6532,
        2568,
        52,
        {
            "train": (
                "cd61495ae5f3c45cb37ad2813ab4cbe7dff721c3e3ca99a2d72de418f9ac861a",
                "d1478609fde43763ce0813e66a31b592bb7681af604fadd67fe0e054f87e7166",
            ),
            "test": (
                "d42078a326a44f1ad8eef2618e7d5d350b441bcee47356ac2686e9612184b49b",
                "6232a845901c0350cd8bec71ead45df80ba4d0963da66edc736c88e50c5f1021",
            ),
        },
    ),
    "ohsumed": KnownDataset(
        "ohsumed",
        3357,
        4043,
        23,
        {
            "train": (
                "c46a9f1c72d342f6e1d4a49e8a1aebaf0266954c83db0573efef2a2895f18b5f",
                "66cf8582521980f3b0289720070fcb3fe64a9e967629b52ce05c5b6b33329225",
            ),
            "test": (
                "cc2be3a3a74c62e3dc8846902ad322bc11b46c2982c40e41f6a89734ecc11c94",
                "6fedb74f2e280b0bfddde7a6be1b3534c57ef7f75d66214df55b3116c1a3e5ec",
            ),
        },
    ),
    "20ng": KnownDataset(
        "20ng",
        11314,
        7532,
        20,
        {
            "train": (
                "25ee52951ef21b41add55b490a940b2273c80e18ff2fb2ad1818a12daf00c997",
                "c106f62f23dfc84ccf71b78dd7ed059523cd68b5582550b823c6dbc3f4b0e0b5",
            ),
            "test": (
                "dc6e9c538fa44223088cf7b9e9116535bc85cc73a55540763fc7c2afb77075fc",
                "ddac52cdfa6cdec0fc8e9938d3018991c1baeafa05f75c4f6b896078203f4e79",
            ),
        },
    ),
}
