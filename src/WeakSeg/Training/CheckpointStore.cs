using System.Globalization;
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

    /// <summary>Whether the run directory RUN holds a complete checkpoint in RUN/checkpoints/ (so its training can be resumed).</summary>
    public static bool HasCheckpointIn(string runDirectory) => new CheckpointStore(Path.Combine(runDirectory, "checkpoints")).Latest() is not null;

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
        WriteFlushed(Path.Combine(temp, StateFile), JsonSerializer.SerializeToUtf8Bytes(state, TrainingJsonContext.Default.CheckpointState));

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
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), TrainingJsonContext.Default.CheckpointState)
                   ?? throw WeakSegException.ForFile(path, "empty checkpoint state");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "unreadable checkpoint state: " + e.Message); }
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
