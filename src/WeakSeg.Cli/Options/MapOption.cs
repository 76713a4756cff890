using System.CommandLine;
using WeakSeg.Methods;

namespace WeakSeg.Cli.Options;

/// <summary><c>--map</c>: which localization map, by the names of <see cref="LocalizationMapKindNames"/>.</summary>
internal static class MapOption
{
    /// <summary>The option with a default map.</summary>
    public static Option<string> Create(string description, LocalizationMapKind defaultKind)
    {
        var option = new Option<string>("--map") { Description = description, DefaultValueFactory = _ => LocalizationMapKindNames.Name(defaultKind) };
        option.AcceptOnlyFromAmong([.. LocalizationMapKindNames.All]);
        return option;
    }

    /// <summary>The option without a default (the command chooses when it is not given).</summary>
    public static Option<string?> CreateOptional(string description)
    {
        var option = new Option<string?>("--map") { Description = description };
        option.AcceptOnlyFromAmong([.. LocalizationMapKindNames.All]);
        return option;
    }

    public static LocalizationMapKind Read(ParseResult parse, Option<string> option) => LocalizationMapKindNames.Parse(parse.GetValue(option)!);

    public static LocalizationMapKind? ReadOptional(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is { } name ? LocalizationMapKindNames.Parse(name) : null;
}
