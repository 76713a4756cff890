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
    /// in the message ("run directory", "output folder").</summary>
    public static FolderLock Acquire(string directory, string what)
    {
        var dir = Path.GetFullPath(directory);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, FileName);
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            AtomicFile.RemoveStaleTemporaryFiles(dir);
            return new FolderLock(stream);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw WeakSegException.ForFile(dir, $"this {what} is in use by another weakseg process (locked through {FileName}); " +
                "wait for it to finish, or use another folder");
        }
    }

    public void Dispose() => _stream.Dispose();
}
