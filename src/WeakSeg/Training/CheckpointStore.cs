using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>A complete checkpoint on disk.</summary>
/// <param name="Step">optimizer steps completed</param>
/// <param name="Directory">checkpoints/step-000001000</param>
public sealed record CheckpointInfo(long Step, string Directory)
{
    public string ModelPath => Path.Combine(Directory, CheckpointStore.ModelFile);
    public string OptimizerPath => Path.Combine(Directory, CheckpointStore.OptimizerFile);
    public string RngPath => Path.Combine(Directory, CheckpointStore.RngFile);
    public string StatePath => Path.Combine(Directory, CheckpointStore.StateFile);
}

/// <summary>
/// Checkpoints in one folder, one sub-folder per step: <c>step-000001000/{model.bin, optimizer.bin, rng.bin, state.json}</c>.
/// A checkpoint is written into <c>.incomplete-step-…</c> and renamed when every file is flushed, so a folder named
/// <c>step-…</c> is always complete; the latest checkpoint is the complete folder with the highest step.
/// model.bin is TorchSharp's Module.save format; optimizer.bin is OptimizerHelper.save_state_dict; rng.bin is torch's CPU
/// generator state (torch.get_rng_state bytes).
/// </summary>
public sealed class CheckpointStore
{
    public const string ModelFile = "model.bin", OptimizerFile = "optimizer.bin", RngFile = "rng.bin", StateFile = "state.json";
    const string Prefix = "step-", IncompletePrefix = ".incomplete-";

    public CheckpointStore(string directory) => Directory = Path.GetFullPath(directory);

    public string Directory { get; }

    /// <summary>Complete checkpoints, oldest first.</summary>
    public IReadOnlyList<CheckpointInfo> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var list = new List<CheckpointInfo>();
        foreach (var d in System.IO.Directory.GetDirectories(Directory, Prefix + "*"))
        {
            var name = Path.GetFileName(d);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var step)
                && File.Exists(Path.Combine(d, StateFile)))
                list.Add(new CheckpointInfo(step, d));
        }
        list.Sort((a, b) => a.Step.CompareTo(b.Step));
        return list;
    }

    public CheckpointInfo? Latest() => List() is { Count: > 0 } l ? l[^1] : null;

    public static string FolderName(long step) => Prefix + step.ToString("D9", CultureInfo.InvariantCulture);

    /// <summary>Writes a checkpoint atomically and returns it. An existing folder for the same step is replaced.</summary>
    public CheckpointInfo Save(CheckpointState state, nn.Module model, OptimizerHelper optimizer, byte[] rngState)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var final = Path.Combine(Directory, FolderName(state.Step));
        var temp = Path.Combine(Directory, IncompletePrefix + FolderName(state.Step));
        if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, true);
        System.IO.Directory.CreateDirectory(temp);

        SaveModelFlushed(model, Path.Combine(temp, ModelFile));
        using (var fs = new FileStream(Path.Combine(temp, OptimizerFile), FileMode.CreateNew))
        using (var w = new BinaryWriter(fs))
        {
            optimizer.save_state_dict(w);
            w.Flush();
            fs.Flush(true);
        }
        WriteFlushed(Path.Combine(temp, RngFile), rngState);
        state = state with { Checksums = new[] { ModelFile, OptimizerFile, RngFile }.ToDictionary(f => f, f => Crc32Of(Path.Combine(temp, f))) };
        WriteFlushed(Path.Combine(temp, StateFile), JsonSerializer.SerializeToUtf8Bytes(state, IO.WeakSegJson.TypeInfo<CheckpointState>()));

        if (System.IO.Directory.Exists(final))
        {
            var stale = Path.Combine(Directory, IncompletePrefix + "stale-" + FolderName(state.Step));
            if (System.IO.Directory.Exists(stale)) System.IO.Directory.Delete(stale, true);
            System.IO.Directory.Move(final, stale);
            System.IO.Directory.Move(temp, final);
            System.IO.Directory.Delete(stale, true);
        }
        else System.IO.Directory.Move(temp, final);
        return new CheckpointInfo(state.Step, final);
    }

    /// <summary>Deletes all but the newest <paramref name="keepLast"/> complete checkpoints, and leftovers of interrupted writes.</summary>
    public void Prune(int keepLast)
    {
        var all = List();
        for (int i = 0; i < all.Count - keepLast; i++) System.IO.Directory.Delete(all[i].Directory, true);
        RemoveIncomplete();
    }

    /// <summary>Deletes folders left by a write that was interrupted (never a complete checkpoint).</summary>
    public void RemoveIncomplete()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        foreach (var d in System.IO.Directory.GetDirectories(Directory, IncompletePrefix + "*")) System.IO.Directory.Delete(d, true);
    }

    public static CheckpointState ReadState(CheckpointInfo checkpoint)
    {
        var path = checkpoint.StatePath;
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), IO.WeakSegJson.TypeInfo<CheckpointState>())
                   ?? throw WeakSegException.ForFile(path, "empty checkpoint state");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "unreadable checkpoint state: " + e.Message); }
    }

    /// <summary>
    /// Checks the files of <paramref name="checkpoint"/> before libtorch reads them (a corrupt generator state aborts the process inside
    /// libtorch rather than raising an error): each file exists and matches the CRC-32 recorded at save time, and rng.bin has the layout
    /// of a CPU generator state. The error names the file, and the older checkpoint to fall back on when there is one.
    /// </summary>
    public void Verify(CheckpointInfo checkpoint, CheckpointState state)
    {
        string Fallback()
        {
            var older = List().LastOrDefault(c => c.Step < checkpoint.Step);
            return older is null
                ? " (no older checkpoint: start a new run directory)"
                : $" (delete {checkpoint.Directory} to resume from the older checkpoint of step {older.Step})";
        }
        foreach (var file in new[] { ModelFile, OptimizerFile, RngFile })
        {
            var path = Path.Combine(checkpoint.Directory, file);
            if (!File.Exists(path)) throw WeakSegException.ForFile(path, "checkpoint file not found" + Fallback());
            if (state.Checksums is { } sums && sums.TryGetValue(file, out var expected) && Crc32Of(path) is var actual && actual != expected)
                throw WeakSegException.ForFile(path, $"corrupt checkpoint file: its CRC-32 is {actual} but {expected} was recorded when it was written" + Fallback());
        }
        if (RngStateProblem(File.ReadAllBytes(checkpoint.RngPath)) is { } problem)
            throw WeakSegException.ForFile(checkpoint.RngPath, "corrupt RNG state: " + problem + Fallback());
    }

    /// <summary>Size in bytes of torch's CPU generator state (CPUGeneratorImplState: the legacy THGeneratorState of an mt19937 plus the
    /// cached float normal sample).</summary>
    public const int CpuRngStateBytes = 5056;

    /// <summary>
    /// Why <paramref name="bytes"/> is not a CPU generator state torch.set_rng_state accepts (null when it is): the size, and the
    /// mt19937 fields libtorch validates (left in 1..624, seeded set, next ≤ 624). Layout: u64 initial seed, i32 left, i32 seeded,
    /// u64 next, u64[624] state, f64 normal x/y/rho, i32 normal valid, f32 next float normal, bool valid.
    /// </summary>
    public static string? RngStateProblem(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != CpuRngStateBytes) return $"{bytes.Length} bytes, expected {CpuRngStateBytes} (a CPU generator state)";
        int left = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        int seeded = BinaryPrimitives.ReadInt32LittleEndian(bytes[12..]);
        ulong next = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        const int mersenneN = 624;
        if (seeded == 0 || left < 1 || left > mersenneN || next > mersenneN)
            return $"not a valid mt19937 state (left {left}, seeded {seeded}, next {next})";
        return null;
    }

    /// <summary>CRC-32 of a file as 8 lower-case hex digits.</summary>
    public static string Crc32Of(string path)
    {
        var crc = new Crc32();
        using (var fs = File.OpenRead(path)) crc.Append(fs);
        return BinaryPrimitives.ReadUInt32LittleEndian(crc.GetCurrentHash()).ToString("x8", CultureInfo.InvariantCulture);
    }

    /// <summary>Loads checkpoint weights into <paramref name="model"/> (strict: every key must match).</summary>
    public static void LoadModel(string modelPath, nn.Module model)
    {
        if (!File.Exists(modelPath)) throw WeakSegException.ForFile(modelPath, "checkpoint weights not found");
        try { model.load(modelPath, strict: true); }
        catch (Exception e) when (e is not WeakSegException)
        {
            throw WeakSegException.ForFile(modelPath, "weights do not fit this model (" + e.Message.Split('\n')[0].Trim() + ")");
        }
    }

    /// <summary>Loads the optimizer state of <paramref name="checkpoint"/> into <paramref name="optimizer"/> (built over the same parameters, in the same order).</summary>
    public static void LoadOptimizer(CheckpointInfo checkpoint, OptimizerHelper optimizer)
    {
        var opt = checkpoint.OptimizerPath;
        if (!File.Exists(opt)) throw WeakSegException.ForFile(opt, "optimizer state not found");
        try
        {
            using var fs = File.OpenRead(opt);
            using var r = new BinaryReader(fs);
            optimizer.load_state_dict(r);
        }
        catch (Exception e) when (e is not WeakSegException)
        {
            throw WeakSegException.ForFile(opt, "optimizer state does not fit this model/optimizer (" + e.Message.Split('\n')[0].Trim() + ")");
        }
    }

    /// <summary>torch CPU generator state bytes stored in <paramref name="checkpoint"/>.</summary>
    public static byte[] ReadRngState(CheckpointInfo checkpoint)
    {
        if (!File.Exists(checkpoint.RngPath)) throw WeakSegException.ForFile(checkpoint.RngPath, "RNG state not found");
        return File.ReadAllBytes(checkpoint.RngPath);
    }

    /// <summary>Module.save then fsync (Module.save closes its stream, so the file is reopened to flush it to disk).</summary>
    internal static void SaveModelFlushed(nn.Module model, string path)
    {
        model.save(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Flush(true);
    }

    static void WriteFlushed(string path, byte[] bytes)
    {
        using var fs = new FileStream(path, FileMode.CreateNew);
        fs.Write(bytes);
        fs.Flush(true);
    }
}
