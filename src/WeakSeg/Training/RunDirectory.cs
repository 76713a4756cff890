using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;

namespace WeakSeg.Training;

/// <summary>
/// A record written as <c>RUN/config.json</c> through <see cref="RunDirectory"/>: the CAM recipe of a `weakseg train` run, the
/// configuration of a segmentation run, the configuration of an affinity run. <see cref="RunDirectory.WriteConfig{T}"/> writes
/// <c>"format_version"</c> first, then <see cref="ToJson"/>'s fields; <see cref="RunDirectory.ReadConfig{T}"/> reads the version,
/// refuses a newer one with a message naming it, and hands the other fields to <see cref="FromJson"/>, which reads every older
/// format this build knows.
/// </summary>
public interface IRunConfig<TSelf> where TSelf : IRunConfig<TSelf>
{
    /// <summary>The format this build writes.</summary>
    static abstract int FormatVersion { get; }

    /// <summary>What writes this kind of run, for error messages ("a run directory written by `weakseg train`").</summary>
    static abstract string RunKind { get; }

    /// <summary>The configuration's fields without <c>format_version</c>, in the order they are written.</summary>
    JsonObject ToJson();

    /// <summary>Reads the fields of a file of format <paramref name="formatVersion"/> (1 ≤ version ≤ <see cref="FormatVersion"/>;
    /// <c>format_version</c> itself is removed). Errors name <paramref name="path"/>.</summary>
    static abstract TSelf FromJson(JsonObject fields, int formatVersion, string path);

    /// <summary>The format of a file written before <c>format_version</c> was recorded (null: such a file is not a configuration of
    /// this kind). May remove the old format marker from <paramref name="fields"/>.</summary>
    static virtual int? LegacyFormatVersion(JsonObject fields) => null;
}

/// <summary>
/// The layout of a training run's folder, one place for every kind of run (CAM training, segmentation, affinity):
/// <code>RUN/config.json        the run's configuration (IRunConfig, with "format_version")
/// RUN/checkpoints/       CheckpointStore: step-NNNNNNNNN/{model.bin, optimizer.bin, rng.bin, state.json}
/// RUN/metrics.jsonl      one JSON line per logged step (Trainer)
/// RUN/model-final.bin    the trained weights (TorchSharp Module.save format)
/// RUN/loss.png           loss and learning-rate curve, written when training completes</code>
/// An affinity run also holds <c>RUN/labels/</c> (its affinity-label images).
/// </summary>
public sealed class RunDirectory
{
    public const string ConfigFile = "config.json", CheckpointFolder = "checkpoints", MetricsFile = "metrics.jsonl",
        FinalWeightsFile = "model-final.bin", LossCurveFile = "loss.png";

    /// <summary>The key every run configuration starts with.</summary>
    public const string FormatVersionKey = "format_version";

    public RunDirectory(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The run folder (absolute).</summary>
    public string Path { get; }

    public string ConfigPath => File(ConfigFile);
    public string CheckpointDirectory => File(CheckpointFolder);
    public string MetricsPath => File(MetricsFile);
    public string FinalWeightsPath => File(FinalWeightsFile);
    public string LossCurvePath => File(LossCurveFile);

    /// <summary>A path inside the run folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public CheckpointStore Checkpoints => new(CheckpointDirectory);

    /// <summary>Whether the run holds a complete checkpoint (so its training can be resumed).</summary>
    public bool HasCheckpoint => Checkpoints.Latest() is not null;

    /// <summary>Whether training finished (model-final.bin exists).</summary>
    public bool IsFinished => System.IO.File.Exists(FinalWeightsPath);

    public bool HasConfig => System.IO.File.Exists(ConfigPath);

    /// <summary>The weights the run offers: model-final.bin, else the latest complete checkpoint (an unfinished run). The error names the run.</summary>
    public string ResolveWeights()
    {
        if (IsFinished) return FinalWeightsPath;
        return Checkpoints.Latest()?.ModelPath
               ?? throw WeakSegException.ForFile(FinalWeightsPath, "no trained weights in the run (neither model-final.bin nor a checkpoint)");
    }

    /// <summary>Refuses to start a fresh run in a folder that already holds checkpoints (the error says how to continue it instead).</summary>
    public void RefuseExistingCheckpoints()
    {
        if (Checkpoints.Latest() is { } existing)
            throw WeakSegException.ForFile(CheckpointDirectory,
                $"already holds checkpoints (latest: step {existing.Step}); pass --resume to continue that run, or choose a new run directory");
    }

    /// <summary>Writes RUN/config.json atomically: <c>"format_version"</c>, then the configuration's fields (indented JSON).</summary>
    public void WriteConfig<T>(T config) where T : IRunConfig<T> =>
        AtomicFile.WriteAllText(ConfigPath, ConfigText(config));

    /// <summary>The text <see cref="WriteConfig{T}"/> writes.</summary>
    public static string ConfigText<T>(T config) where T : IRunConfig<T>
    {
        var json = new JsonObject { [FormatVersionKey] = T.FormatVersion };
        foreach (var (key, value) in config.ToJson())
        {
            if (key == FormatVersionKey) throw new InvalidOperationException($"{typeof(T).Name}.ToJson must not write '{FormatVersionKey}'");
            json[key] = value?.DeepClone();
        }
        return IO.WeakSegJson.Text(json) + "\n";
    }

    /// <summary>Reads RUN/config.json (any format this build knows); a missing, malformed, foreign or newer file is an error naming it.</summary>
    public T ReadConfig<T>() where T : IRunConfig<T>
    {
        if (!System.IO.File.Exists(ConfigPath))
            throw WeakSegException.ForFile(ConfigPath, $"run configuration not found (is this {T.RunKind}?)");
        return ParseConfig<T>(System.IO.File.ReadAllText(ConfigPath), ConfigPath);
    }

    /// <summary>Parses a run configuration read from <paramref name="path"/> (RUN/config.json, or a file given with --config). A key given
    /// twice is an error, as is a format_version this build does not know. A file that records no format (neither format_version nor
    /// an older marker) is of format <paramref name="unversionedIs"/> (a configuration a user wrote), or an error when that is null.</summary>
    public static T ParseConfig<T>(string text, string path, int? unversionedIs = null) where T : IRunConfig<T>
    {
        var fields = JsonFiles.Parse(text, path) as JsonObject ?? throw WeakSegException.ForFile(path, "expected a JSON object");
        int version;
        if (fields[FormatVersionKey] is { } recorded)
        {
            if (recorded.GetValueKind() != JsonValueKind.Number || !recorded.AsValue().TryGetValue<int>(out version))
                throw WeakSegException.ForFile(path, $"'{FormatVersionKey}' must be a whole number (got {recorded.ToJsonString()})");
            fields.Remove(FormatVersionKey);
        }
        else version = T.LegacyFormatVersion(fields) ?? unversionedIs
                       ?? throw WeakSegException.ForFile(path, $"missing field '{FormatVersionKey}' (is this {T.RunKind}?)");
        if (version < 1 || version > T.FormatVersion)
            throw WeakSegException.ForFile(path, $"format_version {version} is not supported (this build reads 1 to {T.FormatVersion}" +
                                                 (version > T.FormatVersion ? "; the run was written by a newer WeakSeg)" : ")"));
        try { return T.FromJson(fields, version, path); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw WeakSegException.ForFile(path, "unreadable run configuration: " + e.Message);
        }
    }
}
