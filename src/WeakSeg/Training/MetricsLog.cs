using System.Text;
using System.Text.Json;
using WeakSeg.IO;

namespace WeakSeg.Training;

/// <summary>One named scalar part of a loss, as logged.</summary>
public readonly record struct LossPart(string Name, float Value);

/// <summary>
/// metrics.jsonl: one JSON object per logged step, flushed after every line:
/// <c>{"step":20,"loss":0.6931,"parts":{"cls":0.5,"patch":0.19},"lr":6.2e-05,"grad_norm":1.3,"seconds":12.5,"images_per_s":101.2}</c>.
/// "step" counts optimizer updates done (1-based); "seconds" is training wall time since the run began (carried over resumes);
/// "images_per_s" is measured over the steps since the previous line.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter _writer;

    MetricsLog(string path, StreamWriter writer) { Path = path; _writer = writer; }

    public string Path { get; }

    /// <summary>Starts a new log (an existing file is replaced).</summary>
    public static MetricsLog Create(string path)
    {
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        return new MetricsLog(path, new StreamWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)));
    }

    /// <summary>Keeps the lines with step ≤ <paramref name="lastKeptStep"/> (drops later and half-written lines, atomically) and appends after them.</summary>
    public static MetricsLog ResumeAfter(string path, long lastKeptStep)
    {
        if (File.Exists(path))
        {
            var kept = new StringBuilder();
            foreach (var line in File.ReadLines(path))
                if (TryReadStep(line, out var step) && step <= lastKeptStep) kept.Append(line).Append('\n');
            AtomicFile.WriteAllText(path, kept.ToString());
        }
        return new MetricsLog(path, new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)));
    }

    public void Append(StepReport report, double imagesPerSecond)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("step", report.Step);
            WriteFloat(w, "loss", report.Loss);
            w.WriteStartObject("parts");
            foreach (var p in report.Parts) WriteFloat(w, p.Name, p.Value);
            w.WriteEndObject();
            WriteDouble(w, "lr", report.LearningRate);
            WriteDouble(w, "grad_norm", report.GradNorm);
            w.WriteNumber("seconds", Math.Round(report.Seconds, 3));
            w.WriteNumber("images_per_s", Math.Round(imagesPerSecond, 2));
            w.WriteEndObject();
        }
        _writer.Write(Encoding.UTF8.GetString(buffer.ToArray()));
        _writer.Write('\n');
        _writer.Flush();
    }

    static void WriteFloat(Utf8JsonWriter w, string name, float v)
    {
        if (float.IsFinite(v)) w.WriteNumber(name, v); else w.WriteString(name, v.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    static void WriteDouble(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteString(name, v.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The loss logged for <paramref name="step"/> in the log at <paramref name="path"/> (null when no readable line has it).</summary>
    public static float? LossAt(string path, long step)
    {
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            if (!TryReadStep(line, out var s) || s != step) continue;
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty("loss", out var loss) && loss.ValueKind == JsonValueKind.Number) return loss.GetSingle();
        }
        return null;
    }

    static bool TryReadStep(string line, out long step)
    {
        step = 0;
        if (string.IsNullOrWhiteSpace(line)) return false;
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                   && doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out step);
        }
        catch (JsonException) { return false; }
    }

    public void Dispose() => _writer.Dispose();
}
