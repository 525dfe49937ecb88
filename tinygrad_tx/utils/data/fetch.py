"""Fetchers: read the samples one index (or one list of indices) names and collate them.

The main process uses a fetcher when num_workers=0; each worker process holds its own otherwise.
"""


class MapDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation  # True: `index` is a list (a batch); False: one sample's index
        self.collate_fn = collate_fn

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if callable(getattr(self.dataset, "__getitems__", None)):  # a dataset that reads a batch at once
            return self.collate_fn(self.dataset.__getitems__(index))
        return self.collate_fn([self.dataset[i] for i in index])


class IterableDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.stream = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        """The next batch (len(index) samples, the list holds only placeholders) or the next sample.
        Raises StopIteration when the stream has nothing more to give."""
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.stream))
        samples = []
        for _ in index:
            try:
                samples.append(next(self.stream))
            except StopIteration:
                self.ended = True
                break
        if not samples or (self.drop_last and len(samples) < len(index)):
            raise StopIteration
        return self.collate_fn(samples)


def create_fetcher(dataset, iterable, auto_collation, collate_fn, drop_last):
    fetcher = IterableDatasetFetcher if iterable else MapDatasetFetcher
    return fetcher(dataset, auto_collation, collate_fn, drop_last)
