"""An example that sits beside the docs: a resource, never a post."""


def greet(name: str) -> str:
    return f"hello, {name}"


if __name__ == "__main__":
    print(greet("gopher"))
