namespace WeakSeg;

/// <summary>Progress of a long loop, reported by library code through <see cref="IProgress{T}"/>; the CLI renders it.</summary>
/// <param name="Done">items finished</param>
/// <param name="Total">items in all</param>
/// <param name="Status">short extra text (loss, step/s), or null</param>
public readonly record struct ProgressUpdate(long Done, long Total, string? Status = null);
