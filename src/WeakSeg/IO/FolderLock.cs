namespace WeakSeg.IO;

/// <summary>
/// Exclusive use of an output folder by one process: an OS lock on <c>DIR/.weakseg.lock</c> (opened with FileShare.None, which .NET
/// maps to flock on Linux and macOS and a sharing mode on Windows). The OS releases it when the process exits, also on kill -9 or a
/// crash, so a stale lock file never blocks a later run. A second process on the same folder is refused at once with one line.
/// Taking the lock also deletes temporary files that killed writers left in the folder (<see cref="AtomicFile.RemoveStaleTemporaryFiles"/>).
/// </summary>
public sealed class FolderLock : IDisposable
{
    public const string FileName = ".weakseg.lock";
    readonly FileStream _stream;

    FolderLock(FileStream stream) => _stream = stream;

    /// <summary>Locks <paramref name="directory"/> (created if missing) for this process; <paramref name="what"/> names the folder's role
    /// in the message ("run directory", "output folder"). <paramref name="shared"/>: a shared lock (flock LOCK_SH), taken by each
    /// <c>--shard i/N</c> job of a per-image stage: shards of one job write disjoint files into the folder side by side, while a
    /// process that needs the folder alone (an exclusive lock) is refused, and refuses them.</summary>
    public static FolderLock Acquire(string directory, string what, bool shared = false)
    {
        var dir = Path.GetFullPath(directory);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, FileName);
        try
        {
            if (shared && !File.Exists(path)) using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite)) { }
            var stream = shared
                ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)          // .NET takes LOCK_SH for a shared read
                : new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            AtomicFile.RemoveStaleTemporaryFiles(dir);
            return new FolderLock(stream);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw WeakSegException.ForFile(dir, $"this {what} is in use by another weakseg process (locked through {FileName}" +
                (shared ? "; shards of one job may share it, other processes may not" : "") + "); wait for it to finish, or use another folder");
        }
    }

    public void Dispose() => _stream.Dispose();
}
